import Foundation
import LopperTesting
import Testing

/// Every command's `--help` is pinned (golden text in Tests/Fixtures/help/), and the examples it
/// shows work when pasted.
@Suite struct HelpTests {
    static let commands = ["demo", "inspect", "run", "bench", "groups", "prune", "cost", "measure", "sweep", "results", "allocate",
                           "export", "report", "coordinator", "worker", "status", "bench-dispatch", "bench-cost"]
    static let golden = Fixtures.root.appendingPathComponent("help")
    static let repository = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent()

    static func help(_ command: String?, columns: Int = 100) throws -> String {
        let result = try Reference.run([LopperBinary.path] + (command.map { [$0] } ?? []) + ["--help"], environment: ["COLUMNS": String(columns)])
        #expect(result.status == 0, "\(command ?? "lopper") --help: \(result.stderr)")
        return result.stdout
    }

    /// Set LOPPER_UPDATE_HELP=1 to rewrite the golden files after changing a command's help.
    @Test(arguments: [nil] + commands) func helpIsPinned(_ command: String?) throws {
        let text = try Self.help(command)
        let file = Self.golden.appendingPathComponent("\(command ?? "lopper").txt")
        if ProcessInfo.processInfo.environment["LOPPER_UPDATE_HELP"] != nil {
            try FileManager.default.createDirectory(at: Self.golden, withIntermediateDirectories: true)
            try Data(text.utf8).write(to: file)
        }
        #expect(text == (try String(contentsOf: file, encoding: .utf8)), "lopper \(command ?? "") --help changed: update \(file.path)")
        // A well-kept help page: a summary line, an example, and the defaults of options that have one.
        #expect(text.hasPrefix("OVERVIEW: "))
        #expect(text.contains("Example"), "lopper \(command ?? "") --help has no example")
    }

    /// The commands of a help page's example, in order (indented lines after `Example`; a line
    /// ending in a backslash goes on in the next).
    static func example(_ help: String) -> [String] {
        guard let start = help.range(of: "Example") else { return [] }
        let lines = help[start.upperBound...].split(separator: "\n", omittingEmptySubsequences: false).dropFirst()
            .prefix { $0.hasPrefix("  ") }.map { $0.trimmingCharacters(in: .whitespaces) }
        return lines.joined(separator: "\n").replacingOccurrences(of: "\\\n", with: " ").split(separator: "\n").map(String.init)
    }

    /// Pasted into a shell in a folder beside the repository's Config and Tests, in the order a
    /// user follows them (the sweep's store feeds results, allocate, export and report). Left
    /// out: demo (two minutes; README's first command), and coordinator, worker and status, which
    /// need each other running (the coordination tests run them).
    @Test func examplesWorkWhenPasted() async throws {
        let folder = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: folder) }
        for name in ["Config", "Tests"] {
            try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent(name), withDestinationURL: Self.repository.appendingPathComponent(name))
        }
        let binaries = URL(fileURLWithPath: LopperBinary.path).deletingLastPathComponent().path
        let order = ["inspect", "groups", "bench", "run", "prune", "cost", "bench-cost", "measure", "sweep", "results", "allocate",
                     "export", "report", "bench-dispatch"]
        for command in order {
            // At 80 columns, as in a small terminal: a command the help wraps would not paste.
            let lines = Self.example(try Self.help(command, columns: 80))
            #expect(!lines.isEmpty, "\(command)")
            for line in lines {
                let result = try await offThePool {
                    try Reference.run(["sh", "-c", "cd '\(folder.path)' && \(line)"],
                                      environment: ["PATH": binaries + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? ""), "COLUMNS": "100"])
                }
                #expect(result.status == 0, "\(line)\n\(result.stderr.suffix(1500))")
            }
        }
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("report.html").path))
    }
}
