import Foundation
import LopperProtocol

/// Load for the dispatch benchmark: workers that take a job and hand back a made-up result at
/// once, through the real protocol (frames, HMAC, one REQ socket each), until the sweep is over.
public enum SimulatedWorkers {
    /// Runs `count` simulated workers against the coordinator at `address`; returns results handed in.
    public static func run(address: String, token: Token?, count: Int) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for index in 0..<count {
                group.addTask { try await work(address: address, token: token, identity: "sim-\(index)") }
            }
            return try await group.reduce(0, +)
        }
    }

    private static func work(address: String, token: Token?, identity: String) async throws -> Int {
        let link = try CoordinatorLink(address: address, identity: identity, token: token, patience: 60)
        var hello = Lopper_Wire_Request()
        hello.hello.workerID = identity
        hello.hello.slots = 1
        guard case .welcome(let welcome)? = try await link.call(hello).kind else { return 0 }
        var results: [Lopper_Wire_JobResult] = []
        var returned = 0
        while true {
            var request = Lopper_Wire_Request()
            request.lease.workerID = identity
            request.lease.sweepID = welcome.sweepID
            request.lease.want = 1
            request.lease.results = results
            returned += results.count
            switch try await link.call(request).kind {
            case .lease(let lease)?:
                results = lease.jobs.map { job in
                    var result = Lopper_Wire_JobResult()
                    result.jobID = job.jobID
                    result.jobKey = job.jobKey
                    result.score = Double(job.jobID)
                    return result
                }
                if lease.jobs.isEmpty { try await Task.sleep(for: .milliseconds(Int(max(1, lease.retryAfterMs)))) }
            default:
                return returned
            }
        }
    }
}
