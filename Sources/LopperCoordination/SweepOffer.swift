import Foundation
import LopperProtocol
import LopperSensitivity

/// What a coordinator offers its workers: the sweep's settings, its input files by content, and
/// the kinds of job it leases (a sweep's jobs, or a batch of another kind over the same sweep).
public struct SweepOffer: Sendable {
    public struct Blob: Sendable {
        public var role: BlobRole
        public var sha256: String
        public var size: Int
        /// Where the coordinator reads it; never sent.
        public var path: String
        /// For the model's external-data files: the path the model names it by.
        public var location = ""
    }

    /// The store identity's `sweepID` over the job list: workers and a restarted coordinator agree on it.
    public var sweepID: String
    public var specJSON: String
    public var blobs: [Blob]
    public var jobCount: Int
    /// The jobs this sweep asks for; a store may also hold jobs of earlier settings, which the
    /// coordinator leaves alone. `nil`: every job in the store.
    public var jobKeys: Set<String>?
    public var metric: MetricKind
    /// The kinds of job leased: `[.sweep]` for a sweep, a batch's kinds otherwise.
    public var kinds: [JobKind] = [.sweep]

    public init(sweepID: String, specJSON: String, blobs: [Blob], jobCount: Int, jobKeys: Set<String>? = nil, metric: MetricKind = .relativeL2) {
        self.sweepID = sweepID
        self.specJSON = specJSON
        self.blobs = blobs
        self.jobCount = jobCount
        self.jobKeys = jobKeys
        self.metric = metric
    }

    public init(setup: SweepSetup) throws {
        let identity = try setup.identity()
        sweepID = identity.sweepID(jobKeys: setup.jobs.map(\.key))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        specJSON = String(decoding: try encoder.encode(setup.spec), as: UTF8.self)
        func blob(_ role: BlobRole, _ path: String, _ sha: String) throws -> Blob {
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
            return Blob(role: role, sha256: sha, size: size, path: path)
        }
        blobs = [try blob(.model, setup.spec.model, identity.modelSHA256),
                 try blob(.calibration, setup.spec.calibration, identity.calibrationSHA256)]
        if let labels = setup.spec.labels, let sha = identity.labelsSHA256 { blobs.append(try blob(.labels, labels, sha)) }
        for (location, sha) in identity.modelDataSHA256.sorted(by: { $0.key < $1.key }) {
            var side = try blob(.modelData, setup.modelDataPath(location), sha)
            side.location = location
            blobs.append(side)
        }
        jobCount = setup.jobs.count
        jobKeys = Set(setup.jobs.map(\.key))
        metric = setup.spec.metric
    }

    /// Offers `path` to the jobs as an attachment with `role`, by its content.
    public mutating func attach(_ role: BlobRole, path: String) throws {
        let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
        blobs.append(Blob(role: role, sha256: try FileDigest.sha256(path), size: size, path: path))
    }

    func welcome(heartbeat: Double, lease: Double, chunkBytes: Int) -> Lopper_Wire_Welcome {
        var welcome = Lopper_Wire_Welcome()
        welcome.sweepID = sweepID
        welcome.specJson = specJSON
        for blob in blobs {
            var ref = Lopper_Wire_BlobRef()
            ref.role = blob.role.rawValue
            ref.sha256 = blob.sha256
            ref.size = UInt64(blob.size)
            ref.location = blob.location
            switch blob.role {
            case .model: welcome.model = ref
            case .calibration: welcome.calibration = ref
            case .labels: welcome.labels = ref
            case .modelData: welcome.modelData.append(ref)
            case .table, .heldOut, .heldOutLabels: welcome.attachments.append(ref)
            }
        }
        welcome.heartbeatMs = UInt32(heartbeat * 1000)
        welcome.leaseMs = UInt32(lease * 1000)
        welcome.maxChunkBytes = UInt32(chunkBytes)
        welcome.jobCount = UInt64(jobCount)
        welcome.kinds = kinds.map(\.wire)
        return welcome
    }
}
