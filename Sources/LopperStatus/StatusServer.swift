import Foundation
import Hummingbird
import LopperReport
import LopperSensitivity

/// The coordinator's live status over HTTP (hummingbird):
/// - `/` the report page of the sweep so far (the same charts as `lopper report`), reloading itself
///   every few seconds, with the coordinator's counters on top;
/// - `/status.json` the counters as JSON (`StatusSnapshot`);
/// - `/metrics` Prometheus metrics (`StatusMetrics`).
/// With `secret` set, every request must carry it, as `Authorization: Bearer SECRET` or `?token=SECRET`.
public struct StatusServer: Sendable {
    public var host: String
    public var port: Int
    /// Checks a client's secret; nil: no check (loopback only: the caller enforces that).
    public var authorize: (@Sendable (String) -> Bool)?
    public var storePath: String
    public var generator: String
    public var refreshSeconds = 5
    public var snapshot: @Sendable () -> StatusSnapshot
    private let metrics = StatusMetrics()

    public init(host: String, port: Int, authorize: (@Sendable (String) -> Bool)?, storePath: String, generator: String,
                snapshot: @escaping @Sendable () -> StatusSnapshot) {
        self.host = host
        self.port = port
        self.authorize = authorize
        self.storePath = storePath
        self.generator = generator
        self.snapshot = snapshot
    }

    /// Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost), where no token is needed.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.split(separator: ".").first == "127"
    }

    func allowed(_ request: Request) -> Bool {
        guard let authorize else { return true }
        if let header = request.headers[.authorization], header.hasPrefix("Bearer ") { return authorize(String(header.dropFirst(7))) }
        return request.uri.queryParameters["token"].map { authorize(String($0)) } ?? false
    }

    static func response(_ text: String, type: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: type, .cacheControl: "no-store"], body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    private static let refusal = response("a token is needed: Authorization: Bearer TOKEN, or ?token=TOKEN\n", type: "text/plain; charset=utf-8",
                                          status: .unauthorized)

    func page() throws -> String {
        let status = snapshot()
        var report = Report(input: try ReportInput(store: try ResultsStore(path: storePath, readOnly: true)), generator: generator,
                            refreshSeconds: status.complete ? nil : refreshSeconds)
        report.status = [["coordinator", status.complete ? "sweep complete" : "running for \(Int(status.uptimeSeconds)) s"],
                         ["workers alive", String(status.workersAlive)],
                         ["scheduler", status.jobsByState.map { "\($0.count) \($0.state)" }.joined(separator: ", ") + " of \(status.jobsTotal)"],
                         ["refused messages", status.refused.isEmpty ? "none" : status.refused.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")]]
        return try report.html()
    }

    func metricsText() throws -> String {
        let rows = try ResultsStore(path: storePath, readOnly: true).allJobs()
        metrics.update(snapshot(), finished: rows.compactMap { row in row.state == .done ? row.seconds.map { (row.id, $0) } : nil })
        return metrics.text()
    }

    /// Serves until the task is cancelled; `onListening` is given the bound port (useful with port 0).
    public func run(onListening: @escaping @Sendable (Int) async -> Void = { _ in }) async throws {
        let router = Router()
        let server = self
        router.get("/") { request, _ -> Response in
            guard server.allowed(request) else { return Self.refusal }
            return Self.response(try server.page(), type: "text/html; charset=utf-8")
        }
        router.get("/status.json") { request, _ -> Response in
            guard server.allowed(request) else { return Self.refusal }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            return Self.response(String(decoding: try encoder.encode(server.snapshot()), as: UTF8.self), type: "application/json")
        }
        router.get("/metrics") { request, _ -> Response in
            guard server.allowed(request) else { return Self.refusal }
            return Self.response(try server.metricsText(), type: "text/plain; version=0.0.4; charset=utf-8")
        }
        let app = Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "lopper"),
                              onServerRunning: { channel in await onListening(channel.localAddress?.port ?? server.port) })
        try await app.run()
    }
}
