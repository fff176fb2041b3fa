import Foundation
import LopperMessaging
import LopperProtocol
import LopperSensitivity
import LopperTesting
import Testing
#if canImport(Glibc)
import Glibc
import LopperModel
#endif

/// Real processes over real sockets: workers and coordinators killed, hostile clients.
@Suite(.serialized) struct FaultTests {
    @Test func aWorkerKilledMidJobChangesNothingInTheTable() async throws {
        let cluster = try ProcessCluster()
        let coordinator = try cluster.startCoordinator()
        let victim = try cluster.startWorker("victim")
        try cluster.startWorker("survivor")
        // Kill the victim while it holds a lease, once some work is done.
        let atKill = ProcessCluster.Snapshot()
        let holding = await cluster.wait {
            let rows = cluster.rows()
            return rows.filter { $0.state == .done }.count >= 10 && rows.contains { $0.state == .running && $0.worker == "victim" }
        } then: {
            kill(victim.processIdentifier, SIGKILL)
            // A result already on the wire when it died may still land; what is left running is lost.
            usleep(500_000)
            atKill.rows = cluster.rows()
        }
        #expect(holding, "the victim never held a lease")
        let held = Set(atKill.rows.filter { $0.state == .running && $0.worker == "victim" }.map(\.id))
        #expect(!held.isEmpty, "killed between jobs")
        #expect(await cluster.finish(coordinator) == 0, "\(cluster.log("coordinator.log"))")
        let rows = cluster.rows()
        #expect(rows.count == 96 && rows.allSatisfy { $0.state == .done })
        // The victim's jobs were leased again and finished by the survivor.
        for row in rows where held.contains(row.id) {
            #expect(row.worker == "survivor" && row.attempts >= 2, "\(row.job.key)")
        }
        #expect(cluster.log("coordinator.log").contains("leases expired"))
        #expect(cluster.scores() == (try await cluster.referenceScores()))
    }

    /// SIGTERM (Kubernetes scaling down): the worker hands its leases back at once and exits
    /// 143; its job runs elsewhere long before the 60 s lease would have expired.
    @Test func aStoppedWorkerHandsItsLeasesBack() async throws {
        let cluster = try ProcessCluster()
        let coordinator = try cluster.startCoordinator(["--lease-seconds", "60", "--heartbeat-seconds", "1"])
        let stopped = try cluster.startWorker("stopped")
        // SIGTERM while it runs a job; within 10 s its lease must be back in the queue.
        let released = ProcessCluster.Snapshot()
        #expect(await cluster.wait {
            let rows = cluster.rows()
            return rows.filter { $0.state == .done }.count >= 5 && rows.contains { $0.state == .running && $0.worker == "stopped" }
        } then: {
            kill(stopped.processIdentifier, SIGTERM)
            let deadline = Date().addingTimeInterval(10)
            while Date() < deadline && cluster.rows().contains(where: { $0.state == .running }) { usleep(20_000) }
            released.rows = cluster.rows()
        })
        #expect(!released.rows.isEmpty && !released.rows.contains { $0.state == .running }, "the lease was not handed back within 10 s")
        #expect(await cluster.finish(stopped, seconds: 10) == 143, "\(cluster.log("stopped.log"))")
        try cluster.startWorker("next")
        #expect(await cluster.finish(coordinator) == 0, "\(cluster.log("coordinator.log"))")
        #expect(cluster.rows().allSatisfy { $0.state == .done })
        #expect(cluster.log("coordinator.log").contains("worker stopped left"))
    }

    @Test func aRestartedCoordinatorResumesWithoutRecomputing() async throws {
        let cluster = try ProcessCluster()
        let first = try cluster.startCoordinator()
        let worker = try cluster.startWorker("w1")
        let atKill = ProcessCluster.Snapshot()
        #expect(await cluster.wait { cluster.rows().filter { $0.state == .done }.count >= 20 } then: {
            kill(first.processIdentifier, SIGKILL)
            usleep(200_000)
            atKill.rows = cluster.rows()
        })
        _ = await cluster.finish(first, seconds: 10)
        let finished = atKill.rows.filter { $0.state == .done }
        #expect(finished.count < 96, "killed mid-sweep")

        let second = try cluster.startCoordinator()
        #expect(await cluster.finish(second) == 0, "\(cluster.log("coordinator.log"))")
        #expect(await cluster.finish(worker, seconds: 30) == 0, "the worker outlived the restart and exited cleanly: \(cluster.log("w1.log"))")
        let after = cluster.rows()
        #expect(after.count == 96 && after.allSatisfy { $0.state == .done })
        for row in finished {
            #expect(after.first { $0.id == row.id } == row, "job \(row.job.key) ran again")
        }
        #expect(cluster.scores() == (try await cluster.referenceScores()))
    }

    /// Random bytes, a truncated frame, a wrong token, an old protocol version, a 100 MB message
    /// and raw TCP garbage: each refused and counted while an honest worker finishes the sweep.
    @Test func hostileClientsAreRefusedAndCounted() async throws {
        let cluster = try ProcessCluster(levels: "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8,0.9")
        let coordinator = try cluster.startCoordinator()
        #expect(await cluster.wait { !cluster.rows().isEmpty })
        try await Task.sleep(for: .milliseconds(500))

        let token = try #require(try Token.load(file: cluster.tokenFile))
        var hello = Lopper_Wire_Request()
        hello.hello.workerID = "mallory"
        let honestFrame = try FrameCodec(identity: "mallory", token: token).seal(hello, to: WireProtocol.coordinator, counter: 1)
        var oldVersion = try Lopper_Wire_Frame(serializedBytes: honestFrame)
        oldVersion.protocolVersion = 0
        var random = SeededGenerator(seed: 3)
        let attacks: [(String, [UInt8])] = [
            ("random bytes", (0..<512).map { _ in UInt8.random(in: 0...255, using: &random) }),
            ("truncated frame", Array(honestFrame.prefix(honestFrame.count / 2))),
            ("wrong token", try FrameCodec(identity: "mallory", token: Token(secret: Array("guess".utf8))).seal(hello, to: WireProtocol.coordinator, counter: 1)),
            ("old version", Array(try oldVersion.serializedData())),
        ]
        for (name, bytes) in attacks {
            let socket = try Socket(.request)
            try socket.dial(cluster.address, waitForPeer: true)
            let context = try Context(socket)
            try await context.send(try Message(bytes))
            let reply = try await context.receive(timeout: .seconds(300))
            let frame = try Lopper_Wire_Frame(serializedBytes: reply.bytes)
            let answer = try Lopper_Wire_Reply(serializedBytes: frame.payload)
            #expect(!answer.rejected.reason.isEmpty, "\(name) was not refused")
            if name == "old version" { #expect(answer.rejected.reason.contains("protocol version 0 is not supported")) }
            if name == "wrong token" { #expect(answer.rejected.reason.contains("authentication failed")) }
        }
        // 100 MB: nng drops it at the transport (the limit is 4 MiB) and closes the connection.
        let big = try Socket(.request)
        try big.dial(cluster.address, waitForPeer: true)
        let bigContext = try Context(big)
        try await bigContext.send(try Message([UInt8](repeating: 7, count: 100 << 20)))
        await #expect(throws: NNGError.self) { _ = try await bigContext.receive(timeout: .seconds(2)) }
        // Raw bytes on the TCP port, not even the SP handshake.
        let port = UInt16(cluster.address.split(separator: ":").last!)!
        let raw = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var peer = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: port.bigEndian, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        let connected = withUnsafePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(raw, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        #expect(connected == 0)
        let junk = [UInt8](repeating: 0x41, count: 64)
        _ = junk.withUnsafeBytes { write(raw, $0.baseAddress, $0.count) }
        try await Task.sleep(for: .milliseconds(200))
        close(raw)

        let (address, tokenFile) = (cluster.address, cluster.tokenFile)
        let status = try await offThePool { try LopperBinary.run(["status", "--connect", address, "--token-file", tokenFile, "--json"]) }
        #expect(status.status == 0, "\(status.stderr)")
        let counters = try #require(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
        let rejected = try #require(counters["rejected"] as? [String: Any])
        func count(_ key: String) -> Int { (rejected[key] as? NSNumber)?.intValue ?? Int((rejected[key] as? String) ?? "") ?? 0 }
        #expect(count("malformed") >= 2 && count("bad-mac") >= 1 && count("version") >= 1, "\(rejected)")
        #expect(count("dropped-connections") >= 1, "the oversized message was not counted: \(rejected)")
        // An unauthenticated status request is refused too.
        let anonymous = try await offThePool { try LopperBinary.run(["status", "--connect", address, "--timeout", "5"]) }
        #expect(anonymous.status != 0 && anonymous.stderr.contains("authentication failed"), "\(anonymous.stderr)")

        // The coordinator still serves an honest worker to the end.
        let worker = try cluster.startWorker("honest")

        #expect(await cluster.finish(coordinator) == 0, "\(cluster.log("coordinator.log"))")
        #expect(await cluster.finish(worker, seconds: 30) == 0)
        #expect(cluster.rows().allSatisfy { $0.state == .done })
        #expect(cluster.log("coordinator.log").contains("refused: bad-mac"))
        #expect(cluster.scores() == (try await cluster.referenceScores()))
    }
}
