import Foundation
import LopperModel

/// Scores a pruned model with the user's own code: `command` is run through `/bin/sh -c` with
/// `{model}` replaced by the pruned model's path (quoted), and must print a JSON number as the
/// last line of its standard output. A failing, silent or slow command fails the job, with its
/// standard error kept in the results; the sweep goes on.
public struct ExternalEvaluator: Codable, Equatable, Sendable {
    public var command: String
    public var timeoutSeconds: Double

    public init(command: String, timeoutSeconds: Double = 600) {
        self.command = command
        self.timeoutSeconds = timeoutSeconds
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case command, timeoutSeconds = "timeout_seconds"
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        command = try c.decode(String.self, forKey: .command)
        timeoutSeconds = try c.decodeIfPresent(Double.self, forKey: .timeoutSeconds) ?? 600
    }

    func validate() throws {
        guard command.contains("{model}") else { throw ModelError("must contain {model} where the model path goes", field: "evaluator.command") }
        guard timeoutSeconds > 0 else { throw ModelError("must be positive", field: "evaluator.timeout_seconds") }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public var stderr: String
    }

    /// Runs the command on a model file and returns the number it printed.
    public func score(modelPath: String) throws -> Double {
        let quoted = "'" + modelPath.replacingOccurrences(of: "'", with: "'\\''") + "'"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", command.replacingOccurrences(of: "{model}", with: quoted)]
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        try process.run()
        final class Box: @unchecked Sendable { var data = Data() }
        let stdout = Box(), stderr = Box()
        let group = DispatchGroup()
        for (pipe, box) in [(out, stdout), (err, stderr)] {
            group.enter()
            DispatchQueue.global().async {
                box.data = pipe.fileHandleForReading.readDataToEndOfFile()
                group.leave()
            }
        }
        var timedOut = false
        if finished.wait(timeout: .now() + timeoutSeconds) == .timedOut {
            timedOut = true
            // Foundation starts the shell as the leader of a process group of its own: kill the
            // group, so that what the command started dies too (and lets go of the pipes).
            let pid = process.processIdentifier
            kill(getpgid(pid) == pid ? -pid : pid, SIGKILL)
            process.waitUntilExit()
        }
        group.wait()
        let errorText = String(decoding: stderr.data.suffix(8192), as: UTF8.self)
        if timedOut {
            throw Failure(description: "evaluator timed out after \(timeoutSeconds) s", stderr: errorText)
        }
        guard process.terminationStatus == 0 else {
            throw Failure(description: "evaluator exited with status \(process.terminationStatus)", stderr: errorText)
        }
        let lastLine = String(decoding: stdout.data, as: UTF8.self).split(separator: "\n").last.map(String.init) ?? ""
        guard let value = (try? JSONSerialization.jsonObject(with: Data(lastLine.utf8), options: [.fragmentsAllowed])) as? NSNumber,
              value.doubleValue.isFinite else {
            throw Failure(description: "evaluator printed '\(lastLine.prefix(200))', not a JSON number", stderr: errorText)
        }
        return value.doubleValue
    }
}
