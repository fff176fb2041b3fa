import Foundation
import LopperSensitivity
import LopperTesting
import Testing

/// An evaluator that starts processes of its own and overruns its timeout: the whole process
/// group is killed, nothing is left running.
@Suite struct EvaluatorTimeoutTests {
    /// Processes whose command line is exactly `arguments`, from /proc.
    static func processes(running arguments: [String]) -> [Int32] {
        let wanted = Data((arguments.joined(separator: "\0") + "\0").utf8)
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap(Int32.init).filter { pid in
            (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) == wanted
        }
    }

    @Test func aTimedOutEvaluatorLeavesNoProcessBehind() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // A child that outlives the shell would leave this file behind when it finishes.
        let finished = directory.appendingPathComponent("child-finished").path
        // Distinct durations, so that these sleeps can be told from any other.
        let child = String(format: "40.%04d", Int.random(in: 0..<10000)), shell = String(format: "30.%04d", Int.random(in: 0..<10000))
        let evaluator = ExternalEvaluator(command: "(sleep \(child); touch '\(finished)') & sleep \(shell); echo 0.5 {model}", timeoutSeconds: 1)
        let outcome = try await offThePool { Result { try evaluator.score(modelPath: "/nonexistent.onnx") } }
        #expect(throws: ExternalEvaluator.Failure.self) { try outcome.get() }
        #expect("\(outcome)".contains("timed out after 1.0 s"))
        #expect(!FileManager.default.fileExists(atPath: finished), "the evaluator's child ran to its end before the timeout was reported")
        let left = Self.processes(running: ["sleep", child]) + Self.processes(running: ["sleep", shell])
        #expect(left.isEmpty, "still running: \(left)")
        for pid in left { kill(pid, SIGKILL) }
    }
}
