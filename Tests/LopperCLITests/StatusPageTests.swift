import Foundation
import LopperTesting
import Testing

/// `lopper coordinator --http`: the live page, /status.json and /metrics, scraped while a real
/// worker runs the sweep.
@Suite(.serialized) struct StatusPageTests {
    static let config = Fixtures.root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Config/sweeps/chain24.yaml").path

    /// GET over loopback with curl: status code and body.
    static func get(_ url: String, headers: [String] = []) throws -> (status: Int, body: String) {
        let result = try Reference.run(["curl", "-s", "--max-time", "10", "-w", "\n%{http_code}"] + headers.flatMap { ["-H", $0] } + [url])
        guard let split = result.stdout.lastIndex(of: "\n"), let code = Int(result.stdout[result.stdout.index(after: split)...]) else {
            return (0, result.stderr)
        }
        return (code, String(result.stdout[..<split]))
    }

    /// Polls `condition` every 100 ms for at most `seconds`.
    static func wait(_ seconds: Double, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            usleep(100_000)
        }
        return false
    }

    static func text(_ file: URL) -> String { (try? String(contentsOf: file, encoding: .utf8)) ?? "" }

    static func number(_ metrics: String, _ series: String) -> Double? {
        metrics.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
    }

    @Test func scrapedWhileASweepRuns() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let token = directory.appendingPathComponent("token").path
        try "status-test-\(UUID().uuidString)\n".write(toFile: token, atomically: true, encoding: .utf8)
        let wire = "tcp://127.0.0.1:\(Int.random(in: 20000...40000))", http = "127.0.0.1:\(Int.random(in: 40001...60000))"
        let coordinator = try LopperBinary.start(["coordinator", "--config", Self.config, "--db", directory.appendingPathComponent("sweep.db").path,
                                          "--listen", wire, "--token-file", token, "--http", http], log: directory.appendingPathComponent("coordinator.log"))
        defer { coordinator.terminate(); coordinator.waitUntilExit() }
        try await offThePool {
            // Before any worker: every job queued, nobody alive.
            let listening = try Self.wait(60) { try Self.get("http://\(http)/status.json").status == 200 }
            #expect(listening, "\(Self.text(directory.appendingPathComponent("coordinator.log")))")
            let before = try JSONSerialization.jsonObject(with: Data(try Self.get("http://\(http)/status.json").body.utf8)) as! [String: Any]
            let total = before["jobsTotal"] as! Int
            #expect(total == 24 * 2 * 9 && before["jobsQueued"] as? Int == total && before["workersAlive"] as? Int == 0)
            let idle = try Self.get("http://\(http)/metrics").body
            #expect(Self.number(idle, "lopper_jobs{state=\"queued\"}") == Double(total))
            #expect(Self.number(idle, "lopper_workers_alive") == 0)

            let worker = try LopperBinary.start(["worker", "--connect", wire, "--token-file", token, "--jobs", "1",
                                         "--cache-dir", directory.appendingPathComponent("cache").path],
                                        log: directory.appendingPathComponent("worker.log"))
            defer { worker.terminate(); worker.waitUntilExit() }
            // While it runs: done jobs counted, timed and shown; the worker alive; traffic counted.
            var metrics = ""
            let running = try Self.wait(120) {
                metrics = try Self.get("http://\(http)/metrics").body
                return (Self.number(metrics, "lopper_jobs{state=\"done\"}") ?? 0) >= 3
            }
            #expect(running, "\(Self.text(directory.appendingPathComponent("worker.log")).suffix(2000))")
            let done = try #require(Self.number(metrics, "lopper_jobs{state=\"done\"}"))
            #expect(done < Double(total), "scraped while the sweep runs")
            #expect(Self.number(metrics, "lopper_workers_alive") == 1)
            // The histogram counts jobs committed to the store, which may trail the scheduler's count by the
            // results still in the journal's transaction.
            let timed = Self.number(metrics, "lopper_job_seconds_count") ?? 0
            #expect(timed >= 1 && timed <= done, "\(timed) timed of \(done) done")
            #expect((Self.number(metrics, "lopper_bytes_received_total") ?? 0) > 0 && (Self.number(metrics, "lopper_bytes_sent_total") ?? 0) > 0)
            #expect(metrics.contains("# TYPE lopper_job_seconds histogram"))

            let page = try Self.get("http://\(http)/")
            #expect(page.status == 200 && page.body.contains("<meta http-equiv=\"refresh\"") && page.body.contains("workers alive"))
            #expect(page.body.contains("class=\"chart line-chart\""), "the charts fill in as results arrive")
            if HeadlessBrowser.isAvailable {
                let rendered = try HeadlessBrowser.load("http://\(http)/")
                #expect(rendered.console.isEmpty, "\(rendered.console)")
                #expect(rendered.dom.contains("id=\"sensitivity\""))
            }
        }
    }

    /// Bound beyond loopback, the page needs the sweep's token; without one it is refused at the start.
    @Test func elsewhereNeedsTheToken() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let port = Int.random(in: 40001...60000)
        let refused = try LopperBinary.run(["coordinator", "--config", Self.config, "--db", directory.appendingPathComponent("a.db").path,
                                            "--listen", "tcp://127.0.0.1:\(port - 1)", "--http", "0.0.0.0:\(port)"])
        #expect(refused.status == 64 && refused.stderr.contains("not a loopback address: give --token-file"), "\(refused.stderr)")
        let bad = try LopperBinary.run(["coordinator", "--config", Self.config, "--db", directory.appendingPathComponent("a.db").path, "--http", "8080"])
        #expect(bad.status == 64 && bad.stderr.contains("--http takes host:port"))

        let secret = "status-test-\(UUID().uuidString)"
        let token = directory.appendingPathComponent("token").path
        try (secret + "\n").write(toFile: token, atomically: true, encoding: .utf8)
        let coordinator = try LopperBinary.start(["coordinator", "--config", Self.config, "--db", directory.appendingPathComponent("sweep.db").path,
                                          "--listen", "tcp://127.0.0.1:\(port - 1)", "--token-file", token, "--http", "0.0.0.0:\(port)"],
                                         log: directory.appendingPathComponent("coordinator.log"))
        defer { coordinator.terminate(); coordinator.waitUntilExit() }
        try await offThePool {
            let refusing = try Self.wait(60) { try Self.get("http://127.0.0.1:\(port)/status.json").status == 401 }
            #expect(refusing)
            #expect(try Self.get("http://127.0.0.1:\(port)/metrics", headers: ["Authorization: Bearer wrong"]).status == 401)
            #expect(try Self.get("http://127.0.0.1:\(port)/metrics", headers: ["Authorization: Bearer \(secret)"]).status == 200)
            #expect(try Self.get("http://127.0.0.1:\(port)/status.json?token=\(secret)").status == 200)
        }
    }
}
