import Foundation
import LopperExport
import LopperModel
import LopperSensitivity

/// One profile's export as `lopper export` wrote it: its manifest and plan, and their bytes
/// (embedded in the report for download).
public struct ExportedProfile: Sendable {
    public var folder: String
    public var manifest: Manifest
    public var plan: PlanFile
    public var manifestJSON: Data
    public var planJSON: Data

    /// Reads `<folder>/manifest.json` and `<folder>/plan.json`; an error names the file.
    public init(folder: String) throws {
        self.folder = folder
        func read<T: Decodable>(_ name: String, as type: T.Type) throws -> (T, Data) {
            let path = (folder as NSString).appendingPathComponent(name)
            guard let data = FileManager.default.contents(atPath: path) else { throw ModelError("cannot be read", file: path) }
            do { return (try JSONDecoder().decode(T.self, from: data), data) } catch {
                throw ModelError("is not a \(name) written by lopper export: \(error)", file: path)
            }
        }
        (manifest, manifestJSON) = try read("manifest.json", as: Manifest.self)
        (plan, planJSON) = try read("plan.json", as: PlanFile.self)
    }

    /// Every sub-folder of `exports` holding a `manifest.json`, by profile folder name.
    public static func all(in exports: String) throws -> [ExportedProfile] {
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: exports, isDirectory: &isFolder), isFolder.boolValue else {
            throw ModelError("is not a folder written by lopper export --out", file: exports)
        }
        let names = try FileManager.default.contentsOfDirectory(atPath: exports).sorted()
        let folders = names.map { (exports as NSString).appendingPathComponent($0) }
            .filter { FileManager.default.fileExists(atPath: ($0 as NSString).appendingPathComponent("manifest.json")) }
        guard !folders.isEmpty else { throw ModelError("holds no <profile>/manifest.json: run lopper export --out with it first", file: exports) }
        return try folders.map(ExportedProfile.init(folder:))
    }
}

/// Everything a report shows, read once: the store's groups and jobs, its damage curves (once the
/// dense score is known), and the exports.
public struct ReportInput: Sendable {
    public struct Group: Sendable {
        public var id: Int
        public var name: String
        public var size: Int
        public var prunable: Bool
    }

    public var storePath: String
    public var model: String?
    public var metric: String
    public var denseScore: Double?
    public var groups: [Group]
    public var rows: [ResultsStore.Row]
    /// Nil until the sweep has its dense score (its first job).
    public var table: SensitivityTable?
    public var exports: [ExportedProfile]

    public var groupNames: [Int: String] { Dictionary(uniqueKeysWithValues: groups.map { ($0.id, $0.name) }) }

    public init(store: ResultsStore, exports: [ExportedProfile] = []) throws {
        storePath = store.path
        metric = try store.metadata("metric") ?? "score"
        denseScore = try store.baseline()?.value
        groups = try store.groups().map { Group(id: $0.id, name: $0.name, size: $0.size, prunable: $0.prunable) }
        rows = try store.allJobs()
        table = denseScore == nil ? nil : try SensitivityTable(store: store)
        model = table?.spec.model
        self.exports = exports
    }

    /// Opens the store read-only (and the exports folder, if given).
    public static func load(db: String, exports: String?) throws -> ReportInput {
        guard FileManager.default.fileExists(atPath: db) else { throw ModelError("does not exist", file: db) }
        return try ReportInput(store: try ResultsStore(path: db, readOnly: true), exports: try exports.map(ExportedProfile.all(in:)) ?? [])
    }
}
