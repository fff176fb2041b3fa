import Foundation
import LopperHardware
import LopperModel

/// One profile's export as a job: everything a process holding the sweep (its setup and
/// sensitivity table) needs to allocate, assemble and validate the profile's model. The same
/// value runs in process and on a worker (`lopper export --workers N`), so both write the same
/// bytes.
public struct ExportRequest: Codable, Sendable, Equatable {
    /// The profile as the user named it (a shipped name or a file), for messages.
    public var reference: String
    /// The profile's YAML text and the file it came from: a worker need not have the file.
    public var profileYAML: String
    public var profileFile: String
    public var budgets: String
    public var constraints: PlanningConstraints
    public var tolerance: Double?
    public var rounds: Int
    public var writeBaselines: Bool

    public init(reference: String, profileYAML: String, profileFile: String, budgets: String,
                constraints: PlanningConstraints = PlanningConstraints(), tolerance: Double? = nil, rounds: Int = 4,
                writeBaselines: Bool = false) {
        self.reference = reference
        self.profileYAML = profileYAML
        self.profileFile = profileFile
        self.budgets = budgets
        self.constraints = constraints
        self.tolerance = tolerance
        self.rounds = rounds
        self.writeBaselines = writeBaselines
    }

    public func encoded() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(self)
    }

    public init(encoded data: Data) throws {
        do { self = try JSONDecoder().decode(Self.self, from: data) } catch {
            throw ModelError("an export request cannot be read: \(error)")
        }
    }

    public var profile: HardwareProfile {
        get throws { try HardwareProfile.parse(yaml: profileYAML, file: profileFile) }
    }
}

/// The files of one profile's export, as bytes: what a worker returns and what is written.
public struct ExportArtifacts: Sendable, Equatable {
    public static let modelFile = "model.onnx", planFile = "plan.json", manifestFile = "manifest.json"
    /// Every file an export consists of, in the order they are written.
    public static let fileNames = [modelFile, planFile, manifestFile]

    /// How the baselines' models are named (`--write-baselines`): `baseline-<name>.onnx`.
    public static func baselineFile(_ name: String) -> String {
        "baseline-" + name.lowercased().replacingOccurrences(of: " ", with: "-") + ".onnx"
    }

    public var model: Data
    public var plan: Data
    public var manifestJSON: Data
    /// The baselines' models, as `baseline-<name>.onnx`, when asked for.
    public var baselines: [(name: String, data: Data)]

    public init(model: Data, plan: Data, manifestJSON: Data, baselines: [(name: String, data: Data)] = []) {
        self.model = model
        self.plan = plan
        self.manifestJSON = manifestJSON
        self.baselines = baselines
    }

    /// The artifacts from files named as `fileNames` (and baselines' models); anything missing or
    /// extra is an error.
    public init(files: [(name: String, data: Data)]) throws {
        let required = files.filter { !Self.isBaselineModel($0.name) }
        let byName = Dictionary(required.map { ($0.name, $0.data) }, uniquingKeysWith: { first, _ in first })
        guard required.count == Self.fileNames.count, Set(byName.keys) == Set(Self.fileNames) else {
            throw ModelError("an export returned the files \(files.map(\.name).sorted().joined(separator: ", ")), not \(Self.fileNames.joined(separator: ", "))")
        }
        self.init(model: byName[Self.modelFile]!, plan: byName[Self.planFile]!, manifestJSON: byName[Self.manifestFile]!,
                  baselines: files.filter { Self.isBaselineModel($0.name) })
    }

    static func isBaselineModel(_ name: String) -> Bool {
        name.hasPrefix("baseline-") && name.hasSuffix(".onnx") && !name.contains("/")
    }

    public var files: [(name: String, data: Data)] {
        [(Self.modelFile, model), (Self.planFile, plan), (Self.manifestFile, manifestJSON)] + baselines
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.model == b.model && a.plan == b.plan && a.manifestJSON == b.manifestJSON
            && a.baselines.map(\.name) == b.baselines.map(\.name) && a.baselines.map(\.data) == b.baselines.map(\.data)
    }

    public var manifest: Manifest {
        get throws {
            do { return try JSONDecoder().decode(Manifest.self, from: manifestJSON) } catch {
                throw ModelError("an export's manifest.json cannot be read: \(error)")
            }
        }
    }

    /// Writes the files into `folder` (created if needed), each to a temporary name first.
    public func write(into folder: String) throws {
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, data) in files {
            let path = (folder as NSString).appendingPathComponent(name)
            do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
                throw ModelError("cannot be written: \(error.localizedDescription)", file: path)
            }
        }
    }
}

extension Exporter {
    /// Runs one export request: the job a worker runs, and the in-process path alike.
    public func run(_ request: ExportRequest) throws -> ExportArtifacts {
        var exporter = self
        exporter.constraints = request.constraints
        return try exporter.export(profile: try request.profile, budgets: request.budgets, tolerance: request.tolerance, rounds: request.rounds,
                                   writeBaselines: request.writeBaselines)
    }
}
