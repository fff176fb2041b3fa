import Foundation
import LopperProtocol
import LopperSensitivity

/// What a coordinator's job asks a worker to do. A worker scores sweep jobs itself; every other
/// kind runs through the `JobHandler` that the layer knowing the kind registers with the worker
/// (`Worker.Options.handlers`), so coordination knows nothing of what such a job means.
public enum JobKind: String, CaseIterable, Sendable {
    case sweep
    /// Allocate, assemble and validate one profile's pruned model (`lopper export`).
    case export

    init?(wire: Lopper_Wire_JobKind) {
        switch wire {
        case .sweep: self = .sweep
        case .export: self = .export
        case .UNRECOGNIZED: return nil
        }
    }

    var wire: Lopper_Wire_JobKind {
        switch self {
        case .sweep: return .sweep
        case .export: return .export
        }
    }
}

/// What a file a coordinator offers is for. It names the file in messages, never as a path.
public enum BlobRole: String, Sendable {
    case model, calibration, labels
    /// One of the model's external-data side files.
    case modelData = "model-data"
    /// An export batch's sensitivity table (JSON).
    case table
    /// An export batch's held-out split (`lopper export --holdout`) and its labels.
    case heldOut = "held-out"
    case heldOutLabels = "held-out-labels"
}

/// A job of a kind other than `sweep`: a key unique in its batch (it names the job in logs and
/// outcomes) and a payload only the kind's handler reads.
public struct BatchJob: Sendable, Hashable {
    public var key: String
    public var kind: JobKind
    public var payload: Data

    public init(key: String, kind: JobKind, payload: Data) {
        self.key = key
        self.kind = kind
        self.payload = payload
    }
}

/// A file a job produced. Its name is a plain file name: the coordinator refuses any other.
public struct ProducedFile: Sendable, Equatable {
    public var name: String
    public var data: Data

    public init(name: String, data: Data) {
        self.name = name
        self.data = data
    }

    /// Whether `name` is a file name with no folder in it.
    static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\0")
    }
}

/// Why a job ended without output: the handler's error, or every lease of it ended unanswered.
public struct JobFailure: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }

    public init(_ reason: String) { self.reason = reason }
}

/// A batch of generic jobs for a coordinator, and where their outcomes go. `deliver` is called
/// once per job, before the worker that ran it hears its result was taken (the counterpart of a
/// sweep's store commit); an error thrown there ends the coordinator's run.
public struct JobBatch: Sendable {
    public var jobs: [BatchJob]
    public var deliver: @Sendable (BatchJob, Result<[ProducedFile], JobFailure>) throws -> Void

    public init(jobs: [BatchJob], deliver: @escaping @Sendable (BatchJob, Result<[ProducedFile], JobFailure>) throws -> Void) {
        self.jobs = jobs
        self.deliver = deliver
    }
}

/// Runs jobs of one kind on a worker: one method, called on a thread of its own, one job at a
/// time per slot. An error fails the job with the error's description.
public protocol JobHandler: Sendable {
    func run(_ payload: Data) throws -> [ProducedFile]
}

/// What a worker has once it joined a coordinator, from which it builds its job handlers: the
/// sweep's setup over the fetched files, and the attachments by role.
public struct WorkerSession: Sendable {
    public let setup: SweepSetup
    public let attachments: [BlobRole: String]
}

/// Builds a kind's handler for one session (once per worker run, before any job).
public typealias JobHandlerFactory = @Sendable (WorkerSession) throws -> any JobHandler
