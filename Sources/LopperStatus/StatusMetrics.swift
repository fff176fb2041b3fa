import Foundation
import Prometheus

/// The coordinator's counters as Prometheus metrics (swift-prometheus), brought up to date at
/// each scrape from a snapshot and the store's finished jobs.
///
/// - `lopper_jobs{state}`: jobs queued, leased, done, failed (gauge)
/// - `lopper_workers_alive` (gauge)
/// - `lopper_bytes_sent_total`, `lopper_bytes_received_total` (counters)
/// - `lopper_refused_messages_total{kind}` (counter)
/// - `lopper_job_seconds`: time to prune and evaluate each finished job (histogram)
final class StatusMetrics: @unchecked Sendable {  // every mutation is under `lock`
    private let registry = PrometheusCollectorRegistry()
    private let lock = NSLock()
    private let workers: Gauge
    private let sent: Counter
    private let received: Counter
    private let latency: ValueHistogram
    private var jobs: [String: Gauge] = [:]
    private var refused: [String: Counter] = [:]
    private var last: StatusSnapshot?
    private var recordedJobs = Set<Int64>()

    static let latencyBuckets: [Double] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300]

    /// `lopper_<metric>[_<unit>]`.
    static func name(_ metric: String, unit: String = "", help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "lopper", metricName: metric, unitName: unit, helpText: help)
    }

    static let refusedName = name("refused_messages_total", help: "Messages refused, by reason.")

    init() {
        workers = registry.makeGauge(descriptor: Self.name("workers_alive", help: "Workers heard from within their lease."))
        sent = registry.makeCounter(descriptor: Self.name("bytes_sent_total", help: "Bytes the coordinator sent."))
        received = registry.makeCounter(descriptor: Self.name("bytes_received_total", help: "Bytes the coordinator received."))
        latency = registry.makeValueHistogram(descriptor: Self.name("job", unit: "seconds", help: "Seconds to prune and evaluate a job, per finished job."),
                                              buckets: Self.latencyBuckets)
        for state in ["queued", "leased", "done", "failed"] {
            jobs[state] = registry.makeGauge(descriptor: Self.name("jobs", help: "Jobs by state."), labels: [("state", state)])
        }
    }

    /// Brings the metrics to `snapshot`; `finished` are (job id, seconds) of done jobs, each
    /// recorded in the histogram once however often it is passed.
    func update(_ snapshot: StatusSnapshot, finished: [(id: Int64, seconds: Double)]) {
        lock.withLock {
            for (state, count) in snapshot.jobsByState { jobs[state]!.set(to: Double(count)) }
            workers.set(to: Double(snapshot.workersAlive))
            sent.increment(by: Int64(max(0, snapshot.bytesSent - (last?.bytesSent ?? 0))))
            received.increment(by: Int64(max(0, snapshot.bytesReceived - (last?.bytesReceived ?? 0))))
            for (kind, count) in snapshot.refused.sorted(by: { $0.key < $1.key }) {
                let counter = refused[kind] ?? registry.makeCounter(descriptor: Self.refusedName, labels: [("kind", kind)])
                refused[kind] = counter
                counter.increment(by: Int64(max(0, count - (last?.refused[kind] ?? 0))))
            }
            for job in finished where recordedJobs.insert(job.id).inserted { latency.record(job.seconds) }
            last = snapshot
        }
    }

    /// The Prometheus text exposition format.
    func text() -> String { registry.emitToString() }
}
