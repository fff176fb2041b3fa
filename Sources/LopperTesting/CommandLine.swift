import Foundation

/// Runs the built `lopper` binary, as a user would.
public enum LopperBinary {
    /// The `lopper` executable beside the test bundle in the build products folder.
    public static var path: String {
        var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        // The test runner may live inside a bundle folder (`*.xctest/`); the products folder is above it.
        while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("lopper").path),
              directory.path != "/" {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("lopper").path
    }

    /// Starts `lopper ARGS…` in the background, its output and errors going to `log`.
    public static func start(_ arguments: [String], log: URL, environment: [String: String]? = nil) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        return process
    }

    /// Runs `lopper ARGS…` and returns its exit status and output.
    public static func run(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try Reference.run([path] + arguments, environment: ["COLUMNS": "100"])
    }
}

/// Runs blocking work (a child process, a file poll) on a thread of its own. Tests that wait
/// for seconds must not hold one of Swift concurrency's few threads (two on a 2-core machine):
/// other tests running in parallel would stall.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

/// A task executor on dispatch's own threads, not Swift concurrency's pool.
public final class OwnThreadsExecutor: TaskExecutor, @unchecked Sendable {
    private let queue = DispatchQueue(label: "lopper.test.own-threads", attributes: .concurrent)

    public init() {}

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// Runs `body` and its child tasks on `OwnThreadsExecutor`: a test whose timeouts run while it
/// awaits replies must not wait for one of the pool's threads, which the suite's synchronous
/// tests hold for minutes on a loaded 2-core machine.
public func awayFromThePool<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
    try await withTaskExecutorPreference(OwnThreadsExecutor()) { try await body() }
}
