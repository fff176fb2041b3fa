import Foundation

/// The independent reference: `Tests/Fixtures/onnx_reference.py`, which wraps ONNX's Python
/// checker and ONNX Runtime. Tests call it as a subprocess and read its JSON answer.
public enum Reference {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Whether python3 with `onnx` and `onnxruntime` is installed. CI installs both, so there
    /// a missing reference is an error rather than a reason to skip.
    public static let isAvailable: Bool = {
        let ok = (try? run(["python3", "-c", "import onnx, onnxruntime"]).status) == 0
        if !ok && Fixtures.isCI { fatalError("CI must install onnx and onnxruntime (see .ci/run)") }
        return ok
    }()

    /// Runs `onnx_reference.py SUBCOMMAND ARGS…` (or another script of `Tests/Fixtures`, such as
    /// the task metrics' `metric_reference.py`) and decodes its JSON output.
    public static func call(_ arguments: [String], script name: String = "onnx_reference.py") throws -> [String: Any] {
        let script = Fixtures.root.appendingPathComponent(name).path
        let result = try run(["python3", script] + arguments)
        guard result.status == 0 else {
            throw Failure(description: "\(name) \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.stderr)")
        }
        guard let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
            throw Failure(description: "\(name) printed no JSON object: \(result.stdout)")
        }
        return object
    }

    /// `onnx.checker.check_model(path, full_check=True)`; the checker's message when it fails.
    public static func checkerError(_ path: String) throws -> String? {
        let answer = try call(["check", path])
        return (answer["ok"] as? Bool) == true ? nil : (answer["error"] as? String ?? "unknown checker error")
    }

    /// Runs a process to completion and returns its exit status and output.
    public static func run(_ command: [String], environment: [String: String]? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        if let environment { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes concurrently so a chatty child cannot block on a full pipe.
        final class Box: @unchecked Sendable { var data = Data() }
        let errBox = Box()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async {
            errBox.data = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        let errData = errBox.data
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData, as: UTF8.self))
    }
}
