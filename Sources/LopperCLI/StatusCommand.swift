import ArgumentParser
import Foundation
import LopperCoordination

struct StatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Print a running coordinator's counters: jobs, workers, traffic, refused messages.",
        discussion: """
            Example:
              lopper status --connect tcp://127.0.0.1:7450 --token-file token
            """)

    @Option(help: ArgumentHelp("The coordinator's address.", valueName: "url"))
    var connect: String

    @OptionGroup var network: NetworkOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(parsing: .unconditional, help: "Seconds to wait for an answer.")
    var timeout = 10.0

    func run() async throws {
        let link = try CoordinatorLink(address: connect, identity: "status-\(UUID().uuidString.prefix(8).lowercased())",
                                       token: try network.token(), tls: network.tls(.client), patience: timeout)
        let status = try await link.status()
        if json {
            print(try status.json())
            return
        }
        let rows: [(String, String)] = [
            ("sweep", String(status.sweepID.prefix(12))),
            ("jobs", "\(status.jobsDone) done, \(status.jobsFailed) failed, \(status.jobsLeased) leased, \(status.jobsQueued) queued of \(status.jobsTotal)"),
            ("complete", status.complete ? "yes" : "no"),
            ("workers alive", "\(status.workersAlive)"),
            ("leases expired", "\(status.leasesExpired)"),
            ("speculative leases", "\(status.speculativeLeases)"),
            ("results ignored", "\(status.resultsIgnored)"),
            ("bytes", "\(status.bytesReceived) received, \(status.bytesSent) sent"),
            ("refused", status.rejected.isEmpty ? "none" : status.rejected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")),
            ("uptime", String(format: "%.1f s", status.uptimeSeconds)),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        for (name, value) in rows { print(name.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + value) }
    }
}
