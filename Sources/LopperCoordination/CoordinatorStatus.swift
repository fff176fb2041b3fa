import Foundation
import LopperProtocol

/// A coordinator's counters at one moment: what `lopper status` prints, and what a status
/// server can serve. A plain value; the wire's `Status` message carries the same fields.
public struct CoordinatorStatus: Codable, Sendable, Equatable {
    public var sweepID = ""
    public var jobsTotal: UInt64 = 0
    public var jobsQueued: UInt64 = 0
    public var jobsLeased: UInt64 = 0
    public var jobsDone: UInt64 = 0
    public var jobsFailed: UInt64 = 0
    /// Workers heard from within one lease duration.
    public var workersAlive: UInt64 = 0
    public var bytesSent: UInt64 = 0
    public var bytesReceived: UInt64 = 0
    public var leasesExpired: UInt64 = 0
    public var resultsIgnored: UInt64 = 0
    public var speculativeLeases: UInt64 = 0
    public var uptimeSeconds = 0.0
    /// No job is queued or leased.
    public var complete = false
    /// Messages refused, by reason (`FrameRejection`'s counter names, and `dropped-connections`).
    public var rejected: [String: UInt64] = [:]

    public init() {}

    init(wire: Lopper_Wire_Status) {
        sweepID = wire.sweepID
        jobsTotal = wire.jobsTotal
        jobsQueued = wire.jobsQueued
        jobsLeased = wire.jobsLeased
        jobsDone = wire.jobsDone
        jobsFailed = wire.jobsFailed
        workersAlive = wire.workersAlive
        bytesSent = wire.bytesSent
        bytesReceived = wire.bytesReceived
        leasesExpired = wire.leasesExpired
        resultsIgnored = wire.resultsIgnored
        speculativeLeases = wire.speculativeLeases
        uptimeSeconds = wire.uptimeSeconds
        complete = wire.complete
        rejected = wire.rejected
    }

    var wire: Lopper_Wire_Status {
        var wire = Lopper_Wire_Status()
        wire.sweepID = sweepID
        wire.jobsTotal = jobsTotal
        wire.jobsQueued = jobsQueued
        wire.jobsLeased = jobsLeased
        wire.jobsDone = jobsDone
        wire.jobsFailed = jobsFailed
        wire.workersAlive = workersAlive
        wire.bytesSent = bytesSent
        wire.bytesReceived = bytesReceived
        wire.leasesExpired = leasesExpired
        wire.resultsIgnored = resultsIgnored
        wire.speculativeLeases = speculativeLeases
        wire.uptimeSeconds = uptimeSeconds
        wire.complete = complete
        wire.rejected = rejected
        return wire
    }

    /// As JSON with the wire's field names (`jobs_done`, …), keys sorted.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}

/// The shared secret coordinator and workers sign their messages with (HMAC-SHA256), as the
/// coordination API takes it: callers need not know the wire protocol's module.
public typealias Token = LopperProtocol.Token
