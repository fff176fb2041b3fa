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

    /// A folder beside the repository's Config and Tests, as a user's checkout.
    static func checkout() throws -> URL {
        let folder = try Fixtures.temporaryDirectory()
        for name in ["Config", "Tests"] {
            try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent(name), withDestinationURL: Self.repository.appendingPathComponent(name))
        }
        return folder
    }

    /// Runs a shell script in `folder` with `lopper` on the PATH (and HOME there: the worker's cache).
    static func shell(_ script: String, in folder: URL) async throws -> (status: Int32, stdout: String, stderr: String) {
        let binaries = URL(fileURLWithPath: LopperBinary.path).deletingLastPathComponent().path
        return try await offThePool {
            try Reference.run(["sh", "-c", "cd '\(folder.path)' && \(script)"],
                              environment: ["PATH": binaries + ":" + (ProcessInfo.processInfo.environment["PATH"] ?? ""), "COLUMNS": "100",
                                            "HOME": folder.path])
        }
    }

    /// Pasted into a shell in a checkout, in the order a user follows them (the sweep's store
    /// feeds results, allocate, export and report). Left out: demo (README's first command).
    @Test func examplesWorkWhenPasted() async throws {
        let folder = try Self.checkout()
        defer { try? FileManager.default.removeItem(at: folder) }
        let order = ["inspect", "groups", "bench", "run", "prune", "cost", "bench-cost", "measure", "sweep", "results", "allocate",
                     "export", "report", "bench-dispatch"]
        for command in order {
            // At 80 columns, as in a small terminal: a command the help wraps would not paste.
            let lines = Self.example(try Self.help(command, columns: 80))
            #expect(!lines.isEmpty, "\(command)")
            for line in lines {
                let result = try await Self.shell(line, in: folder)
                #expect(result.status == 0, "\(line)\n\(result.stderr.suffix(1500))")
            }
        }
        #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("report.html").path))
    }

    /// coordinator, status and worker as three terminals would run them: the coordinator's
    /// example in the background, status once it answers, then a worker until the sweep is over.
    @Test func clusterExamplesWorkTogether() async throws {
        let folder = try Self.checkout()
        defer { try? FileManager.default.removeItem(at: folder) }
        let coordinator = Self.example(try Self.help("coordinator", columns: 80))
        let (status, worker) = (Self.example(try Self.help("status", columns: 80)), Self.example(try Self.help("worker", columns: 80)))
        #expect(coordinator.count == 2 && status.count == 1 && worker.count == 1)
        let script = """
            set -e
            \(coordinator[0])
            \(coordinator[1]) > coordinator.log 2>&1 &
            pid=$!
            answered=no
            for i in $(seq 300); do if \(status[0]) > status.txt 2>&1; then answered=yes; break; fi; sleep 0.2; done
            [ $answered = yes ] || { cat status.txt coordinator.log >&2; exit 3; }
            \(worker[0]) --jobs 2
            wait $pid
            """
        let result = try await Self.shell(script, in: folder)
        #expect(result.status == 0, "\(result.stderr.suffix(2000))")
        #expect((try? String(contentsOf: folder.appendingPathComponent("status.txt"), encoding: .utf8))?.contains("queued of \(24 * 2 * 9)") == true)
        let rows = try LopperBinary.run(["results", "--db", folder.appendingPathComponent("chain24.db").path, "--format", "csv"])
        #expect(rows.stdout.split(separator: "\n").count == 24 * 2 * 9 + 1 && !rows.stdout.contains(",failed,"))
    }
}
