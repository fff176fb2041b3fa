import Crypto
import Foundation
import LopperProtocol
import LopperSensitivity

/// What a coordinator offers its workers: the sweep's settings, and its input files by content.
public struct SweepOffer: Sendable {
    public struct Blob: Sendable {
        public var role: String
        public var sha256: String
        public var size: Int
        /// Where the coordinator reads it; never sent.
        public var path: String
        /// For the model's external-data files: the path the model names it by.
        public var location = ""
    }

    /// SHA-256 of the store identity and the job list: workers and a restarted coordinator agree on it.
    public var sweepID: String
    public var specJSON: String
    public var blobs: [Blob]
    public var jobCount: Int
    /// The jobs this sweep asks for; a store may also hold jobs of earlier settings, which the
    /// coordinator leaves alone. `nil`: every job in the store.
    public var jobKeys: Set<String>?
    public var metric: MetricKind

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
        let folder = URL(fileURLWithPath: setup.spec.model).deletingLastPathComponent()
        let sideFiles = try setup.model.externalDataLocations.map { location in
            let path = folder.appendingPathComponent(location).path
            return (location, path, try FileDigest.sha256(path))
        }
        let described = sideFiles.map { "\($0.0)=\($0.2)" } + [identity.modelSHA256, identity.calibrationSHA256, identity.labelsSHA256 ?? "", identity.metric.rawValue,
                         String(identity.samples), String(identity.batchSize), identity.output, identity.method]
            + setup.jobs.map(\.key).sorted()
        sweepID = SHA256.hash(data: Data(described.joined(separator: "\n").utf8)).map { String(format: "%02x", $0) }.joined()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        specJSON = String(decoding: try encoder.encode(setup.spec), as: UTF8.self)
        func blob(_ role: String, _ path: String, _ sha: String) throws -> Blob {
            let size = (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
            return Blob(role: role, sha256: sha, size: size, path: path)
        }
        blobs = [try blob("model", setup.spec.model, identity.modelSHA256),
                 try blob("calibration", setup.spec.calibration, identity.calibrationSHA256)]
        if let labels = setup.spec.labels, let sha = identity.labelsSHA256 { blobs.append(try blob("labels", labels, sha)) }
        for (location, path, sha) in sideFiles {
            var side = try blob("model-data", path, sha)
            side.location = location
            blobs.append(side)
        }
        jobCount = setup.jobs.count
        jobKeys = Set(setup.jobs.map(\.key))
        metric = setup.spec.metric
    }

    func welcome(heartbeat: Double, lease: Double, chunkBytes: Int) -> Lopper_Wire_Welcome {
        var welcome = Lopper_Wire_Welcome()
        welcome.sweepID = sweepID
        welcome.specJson = specJSON
        for blob in blobs {
            var ref = Lopper_Wire_BlobRef()
            ref.role = blob.role
            ref.sha256 = blob.sha256
            ref.size = UInt64(blob.size)
            ref.location = blob.location
            switch blob.role {
            case "model": welcome.model = ref
            case "calibration": welcome.calibration = ref
            case "model-data": welcome.modelData.append(ref)
            default: welcome.labels = ref
            }
        }
        welcome.heartbeatMs = UInt32(heartbeat * 1000)
        welcome.leaseMs = UInt32(lease * 1000)
        welcome.maxChunkBytes = UInt32(chunkBytes)
        welcome.jobCount = UInt64(jobCount)
        return welcome
    }
}
