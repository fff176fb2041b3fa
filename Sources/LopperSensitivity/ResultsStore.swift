import Foundation
import Crypto
import GRDB
import LopperModel
import LopperPruning

/// The durable record of a sweep: one SQLite file (WAL mode) holding the sweep's identity, its
/// groups, every job with its state, and the results. Documented in `Docs/results-store.md` so it
/// can be read with `sqlite3` or pandas. Every state change is committed before it is reported.
public final class ResultsStore: @unchecked Sendable {
    public let path: String
    let database: DatabasePool

    /// Everything that changes a sweep's scores: its input files by content, and the settings
    /// of its scoring. A store made for another identity is refused, and the sweep id the
    /// coordinator and its workers agree on is derived from it (`sweepID(jobKeys:)`).
    public struct Identity: Equatable, Sendable {
        public var modelSHA256: String
        /// The model's external-data side files: location (relative to the model) → SHA-256.
        public var modelDataSHA256: [String: String] = [:]
        public var calibrationSHA256: String
        public var labelsSHA256: String?
        public var metric: MetricKind
        public var samples: Int
        public var batchSize: Int
        public var output: String
        /// The scoring method, and the external evaluator's command when there is one.
        public var method: String
        public var topK: Int
        /// The metric's own settings (detection decoding, mask input, CTC blank); absent for
        /// metrics without any, so older stores still bind.
        public var metricSettings: String? = nil

        /// The fields by the names the store keeps them under, in a fixed order.
        var fields: [(key: String, value: String)] {
            [("model_sha256", modelSHA256),
             ("model_data_sha256", modelDataSHA256.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ",")),
             ("calibration_sha256", calibrationSHA256), ("labels_sha256", labelsSHA256 ?? ""), ("metric", metric.rawValue),
             ("samples", String(samples)), ("batch_size", String(batchSize)), ("output", output), ("method", method),
             ("top_k", String(topK))] + (metricSettings.map { [("metric_settings", $0)] } ?? [])
        }

        /// SHA-256 (hex) of every field and the sorted job keys: the same for every process
        /// that derives the same sweep, and different when anything that changes a score does.
        public func sweepID(jobKeys: [String]) -> String {
            let described = fields.map { "\($0.key)=\($0.value)" } + jobKeys.sorted()
            return SHA256.hash(data: Data(described.joined(separator: "\n").utf8)).map { String(format: "%02x", $0) }.joined()
        }
    }

    /// Where a job stands (the `state` column).
    public enum JobState: String, Sendable, Equatable {
        case pending, running, done, failed
    }

    public struct Row: Sendable, Equatable {
        public var id: Int64
        public var job: SweepJob
        public var state: JobState
        public var score: Double?
        public var removed: Int?
        public var seconds: Double?
        public var macsExecuted: Int?
        public var worker: String?
        public var error: String?
        public var stderr: String?
        public var attempts: Int
    }

    /// Opens (creating it if needed) a store. `readOnly` opens an existing store without
    /// changing it, for readers such as `lopper results` while a sweep writes.
    public init(path: String, readOnly: Bool = false) throws {
        self.path = path
        var configuration = Configuration()
        configuration.readonly = readOnly
        // Other processes (a sweep, a reader, a restarted coordinator) may hold the lock briefly.
        configuration.busyMode = .timeout(30)
        do {
            database = try DatabasePool(path: path, configuration: configuration)
            if readOnly {
                let migrated = try database.read { try $0.tableExists("jobs") }
                guard migrated else { throw ModelError("is not a Lopper results store (it has no jobs table)", file: path) }
            } else {
                let foreign = try database.read { db in
                    try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
                }
                if !foreign.isEmpty && !foreign.contains("grdb_migrations") {
                    throw ModelError("is an SQLite database of something else (tables: \(foreign.sorted().joined(separator: ", "))); Lopper adds no tables to it: use another --db", file: path)
                }
                try Self.migrator.migrate(database)
            }
        } catch let error as DatabaseError {
            throw ModelError("is not a usable Lopper results store: \(error.message ?? "\(error)")", file: path)
        }
    }

    private static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE sweep (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
                CREATE TABLE groups (
                    id INTEGER PRIMARY KEY, name TEXT NOT NULL, size INTEGER NOT NULL,
                    channels_per_unit INTEGER NOT NULL, prunable INTEGER NOT NULL, reason TEXT);
                CREATE TABLE jobs (
                    id INTEGER PRIMARY KEY,
                    job_key TEXT NOT NULL UNIQUE,
                    group_id INTEGER NOT NULL REFERENCES groups(id),
                    granularity TEXT NOT NULL, criterion TEXT NOT NULL, level REAL NOT NULL,
                    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'running', 'done', 'failed')),
                    score REAL, removed INTEGER, wall_seconds REAL, macs_executed INTEGER,
                    worker TEXT, error TEXT, stderr TEXT, attempts INTEGER NOT NULL DEFAULT 0, updated_at TEXT);
                CREATE INDEX jobs_by_state ON jobs(state);
                CREATE TABLE baseline (metric TEXT PRIMARY KEY NOT NULL, value REAL NOT NULL);
                """)
        }
        return migrator
    }

    /// Binds a new store to `identity`, or checks that an existing one was made for the same inputs.
    public func bind(to identity: Identity, spec: SweepSpec) throws {
        let fields = identity.fields
        try database.write { db in
            let existing = Dictionary(uniqueKeysWithValues: try GRDB.Row.fetchAll(db, sql: "SELECT key, value FROM sweep").map {
                ($0["key"] as String, $0["value"] as String)
            })
            if existing.isEmpty {
                for (key, value) in fields + [("spec", Self.canonicalJSON(spec)), ("created_at", ISO8601DateFormatter().string(from: Date()))] {
                    try db.execute(sql: "INSERT INTO sweep (key, value) VALUES (?, ?)", arguments: [key, value])
                }
                return
            }
            for (key, value) in fields where existing[key] == nil {
                // A field an earlier release did not record: recorded now, checked from now on.
                try db.execute(sql: "INSERT INTO sweep (key, value) VALUES (?, ?)", arguments: [key, value])
            }
            for (key, value) in fields where existing[key].map({ $0 != value }) ?? false {
                throw ModelError("was made for \(key) \(existing[key]!), but this sweep has \(value); use another --db or the original inputs",
                                 file: path)
            }
        }
    }

    /// JSON with sorted keys: the same value always gives the same text.
    static func canonicalJSON(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(value)) ?? Data(), as: UTF8.self)
    }

    /// Residual blocks are rows of `groups` too, after the channel groups (id `groups.count +
    /// block.id`, named `block <join>`, size 1), so that layer jobs name their unit like others.
    public func register(groups: [PruneGroup], blocks: [ResidualBlock] = [], jobs: [SweepJob]) throws {
        try database.write { db in
            for group in groups {
                try db.execute(sql: """
                    INSERT OR IGNORE INTO groups (id, name, size, channels_per_unit, prunable, reason) VALUES (?, ?, ?, ?, ?, ?)
                    """, arguments: [group.id, group.name, group.size, group.channelsPerUnit, group.isPrunable, group.blockedBecause])
            }
            for block in blocks {
                try db.execute(sql: """
                    INSERT OR IGNORE INTO groups (id, name, size, channels_per_unit, prunable, reason) VALUES (?, ?, 1, 1, ?, ?)
                    """, arguments: [groups.count + block.id, "block " + block.name, block.isRemovable, block.refusal])
            }
            for job in jobs {
                try db.execute(sql: """
                    INSERT OR IGNORE INTO jobs (job_key, group_id, granularity, criterion, level) VALUES (?, ?, ?, ?, ?)
                    """, arguments: [job.key, job.group, job.granularity.rawValue, job.criterion, job.level])
            }
        }
    }

    /// Jobs not finished yet, in a stable order. A job left `running` by a process that died
    /// counts as pending.
    public func unfinishedJobs() throws -> [Row] {
        try rows(where: "state != 'done'")
    }

    public func allJobs() throws -> [Row] { try rows(where: "1") }

    /// One change of a job's state.
    public enum Change: Sendable {
        /// A worker started the job (its attempts count up).
        case leased(Int64, worker: String)
        /// The job goes back to the queue (its lease expired or its worker left).
        case released(Int64)
        case result(Int64, JobOutcome, worker: String)
        /// The job failed: the message and (for an external evaluator) its standard error.
        case failure(Int64, String, stderr: String?, worker: String)
        /// The dense model's score.
        case baseline(Double, MetricKind)
    }

    /// Applies `changes` in one transaction, in order. A job already done keeps its first
    /// result: the returned flags say, per change, whether it changed the store.
    @discardableResult
    public func apply(_ changes: [Change]) throws -> [Bool] {
        let now = Self.now()
        return try database.write { db in
            try changes.map { change in
                switch change {
                case .leased(let id, let worker):
                    try db.execute(sql: "UPDATE jobs SET state = 'running', worker = ?, attempts = attempts + 1, updated_at = ? WHERE id = ? AND state != 'done'",
                                   arguments: [worker, now, id])
                case .released(let id):
                    try db.execute(sql: "UPDATE jobs SET state = 'pending', updated_at = ? WHERE id = ? AND state = 'running'", arguments: [now, id])
                case .result(let id, let outcome, let worker):
                    try db.execute(sql: """
                        UPDATE jobs SET state = 'done', score = ?, removed = ?, wall_seconds = ?, macs_executed = ?, worker = ?,
                        error = NULL, stderr = NULL, updated_at = ? WHERE id = ? AND state != 'done'
                        """, arguments: [outcome.score, outcome.removed, outcome.seconds, outcome.macsExecuted, worker, now, id])
                case .failure(let id, let message, let stderr, let worker):
                    try db.execute(sql: "UPDATE jobs SET state = 'failed', error = ?, stderr = ?, worker = ?, updated_at = ? WHERE id = ? AND state != 'done'",
                                   arguments: [message, stderr, worker, now, id])
                case .baseline(let value, let metric):
                    try db.execute(sql: "INSERT OR REPLACE INTO baseline (metric, value) VALUES (?, ?)", arguments: [metric.rawValue, value])
                }
                return db.changesCount > 0
            }
        }
    }

    public func markRunning(_ id: Int64, worker: String) throws {
        try apply([.leased(id, worker: worker)])
    }

    /// Stores a result. A job already done keeps its first result (results are idempotent by id).
    @discardableResult
    public func recordResult(_ id: Int64, _ outcome: JobOutcome, worker: String) throws -> Bool {
        try apply([.result(id, outcome, worker: worker)])[0]
    }

    /// Marks a job failed, keeping the message and (for an external evaluator) its standard error.
    public func recordFailure(_ id: Int64, _ message: String, stderr: String? = nil, worker: String) throws {
        try apply([.failure(id, message, stderr: stderr, worker: worker)])
    }

    public func setBaseline(_ value: Double, metric: MetricKind) throws {
        try apply([.baseline(value, metric)])
    }

    public func baseline() throws -> (metric: String, value: Double)? {
        try database.read { db in
            try GRDB.Row.fetchOne(db, sql: "SELECT metric, value FROM baseline").map { ($0["metric"], $0["value"]) }
        }
    }

    public func groups() throws -> [(id: Int, name: String, size: Int, prunable: Bool, reason: String?)] {
        try database.read { db in
            try GRDB.Row.fetchAll(db, sql: "SELECT id, name, size, prunable, reason FROM groups ORDER BY id").map {
                ($0["id"], $0["name"], $0["size"], $0["prunable"], $0["reason"])
            }
        }
    }

    public func metadata(_ key: String) throws -> String? {
        try database.read { db in try String.fetchOne(db, sql: "SELECT value FROM sweep WHERE key = ?", arguments: [key]) }
    }

    private func rows(where condition: String) throws -> [Row] {
        try database.read { db in
            try GRDB.Row.fetchAll(db, sql: """
                SELECT id, group_id, granularity, criterion, level, state, score, removed, wall_seconds, macs_executed,
                       worker, error, stderr, attempts FROM jobs WHERE \(condition) ORDER BY group_id, granularity, criterion, level
                """).map { row in
                Row(id: row["id"], job: SweepJob(group: row["group_id"], granularity: Granularity(rawValue: row["granularity"]) ?? .channel,
                                                 criterion: row["criterion"], level: row["level"]),
                    state: JobState(rawValue: row["state"]) ?? .pending, score: row["score"], removed: row["removed"], seconds: row["wall_seconds"],
                    macsExecuted: row["macs_executed"], worker: row["worker"], error: row["error"], stderr: row["stderr"],
                    attempts: row["attempts"])
            }
        }
    }

    private static func now() -> String { ISO8601DateFormatter().string(from: Date()) }
}
