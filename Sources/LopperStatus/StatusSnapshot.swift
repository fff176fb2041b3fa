/// What the status server shows of a running coordinator at one moment: the value its source
/// closure returns (the coordinator's counters, converted by the caller), so this module needs
/// nothing of the coordinator's.
public struct StatusSnapshot: Codable, Sendable, Equatable {
    public var sweepID: String
    public var jobsTotal: Int
    public var jobsQueued: Int
    public var jobsLeased: Int
    public var jobsDone: Int
    public var jobsFailed: Int
    public var workersAlive: Int
    public var bytesSent: Int
    public var bytesReceived: Int
    /// Messages refused, by reason (malformed, version, bad-mac, misaddressed, replay, …).
    public var refused: [String: Int]
    public var uptimeSeconds: Double
    public var complete: Bool

    public init(sweepID: String, jobsTotal: Int, jobsQueued: Int, jobsLeased: Int, jobsDone: Int, jobsFailed: Int, workersAlive: Int,
                bytesSent: Int, bytesReceived: Int, refused: [String: Int], uptimeSeconds: Double, complete: Bool) {
        self.sweepID = sweepID
        self.jobsTotal = jobsTotal
        self.jobsQueued = jobsQueued
        self.jobsLeased = jobsLeased
        self.jobsDone = jobsDone
        self.jobsFailed = jobsFailed
        self.workersAlive = workersAlive
        self.bytesSent = bytesSent
        self.bytesReceived = bytesReceived
        self.refused = refused
        self.uptimeSeconds = uptimeSeconds
        self.complete = complete
    }

    /// Jobs by state, in the order the page and the metrics list them.
    public var jobsByState: [(state: String, count: Int)] {
        [("queued", jobsQueued), ("leased", jobsLeased), ("done", jobsDone), ("failed", jobsFailed)]
    }
}
