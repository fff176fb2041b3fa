import Foundation
import LopperModel
import LopperSensitivity
import LopperTesting
import ONNXProto
import Testing

/// Mistakes that used to be met with a misleading message (or none): each now says what is wrong.
@Suite struct MisleadingMessageTests {
    let directory: URL
    init() throws { directory = try Fixtures.temporaryDirectory() }

    var sweep: [String] { ["--config", SweepCommandTests.config, "--db", directory.appendingPathComponent("s.db").path] }

    @Test func aTLSAddressWithoutACertificateIsRefusedAtStart() async throws {
        let result = try await offThePool { try LopperBinary.run(["coordinator"] + sweep + ["--listen", "tls+tcp://127.0.0.1:\(Int.random(in: 20000...60000))"]) }
        #expect(result.status == 64 && result.stderr.contains("needs --tls-cert and --tls-key"), "\(result.stderr)")
    }

    @Test func statusAgainstADeadAddressSaysNothingAnswers() async throws {
        let address = "tcp://127.0.0.1:\(Int.random(in: 20000...60000))"
        let result = try await offThePool { try LopperBinary.run(["status", "--connect", address, "--timeout", "1"]) }
        #expect(result.status != 0 && result.stderr.contains("nothing answers at \(address)"), "\(result.stderr)")
        #expect(!result.stderr.contains("Timed out"))
    }

    @Test func anEmptyTokenFileSaysSo() async throws {
        let token = directory.appendingPathComponent("token").path
        try "\n".write(toFile: token, atomically: true, encoding: .utf8)
        let result = try await offThePool { try LopperBinary.run(["status", "--connect", "tcp://127.0.0.1:1", "--token-file", token]) }
        #expect(result.status != 0 && result.stderr.contains("the token file \(token) is empty"), "\(result.stderr)")
        #expect(!result.stderr.contains("malformed"))
    }

    @Test func negativeNumbersReachValidation() async throws {
        let lease = try await offThePool { try LopperBinary.run(["coordinator"] + sweep + ["--lease-seconds", "-5"]) }
        #expect(lease.status == 64 && lease.stderr.contains("--lease-seconds and --heartbeat-seconds must be positive"), "\(lease.stderr)")
        let jobs = try await offThePool { try LopperBinary.run(["worker", "--connect", "tcp://127.0.0.1:1", "--jobs", "-2"]) }
        #expect(jobs.status == 64 && jobs.stderr.contains("--jobs must be at least 1"), "\(jobs.stderr)")
    }

    @Test func newerVersionsThanLopperKnowsAreWarnedAbout() async throws {
        var builder = ModelBuilder(opset: Int64(Model.newestOpset + 5))
        builder.input("x", [1, 4])
        builder.node("Relu", ["x"], ["y"])
        builder.output("y")
        var proto = try Onnx_ModelProto(serializedBytes: try builder.model().serialized())
        proto.irVersion = Int64(Model.newestIRVersion + 3)
        let path = directory.appendingPathComponent("future.onnx").path
        try proto.serializedData().write(to: URL(fileURLWithPath: path))
        let result = try await offThePool { try LopperBinary.run(["inspect", path]) }
        #expect(result.status == 0)
        #expect(result.stderr.contains("warning: \(path): IR version \(Model.newestIRVersion + 3) is newer"), "\(result.stderr)")
        #expect(result.stderr.contains("opset \(Model.newestOpset + 5) is newer than the newest Lopper knows"), "\(result.stderr)")
        let current = try await offThePool { try LopperBinary.run(["inspect", Fixtures.model("conv_chain")]) }
        #expect(!current.stderr.contains("warning"))
    }

    @Test(.enabled(if: Reference.isAvailable))
    func aForeignSQLiteFileIsNotTakenOver() throws {
        let db = directory.appendingPathComponent("other.db").path
        let made = try Reference.run(["python3", "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('CREATE TABLE invoices (id INTEGER)'); c.commit()", db])
        #expect(made.status == 0, "\(made.stderr)")
        #expect { try ResultsStore(path: db) } throws: { "\($0)".contains("\(db): is an SQLite database of something else (tables: invoices)") }
        let tables = try Reference.run(["python3", "-c", "import sqlite3, sys; print(sorted(r[0] for r in sqlite3.connect(sys.argv[1]).execute(\"SELECT name FROM sqlite_master WHERE type='table'\")))", db])
        #expect(tables.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "['invoices']")
    }
}
