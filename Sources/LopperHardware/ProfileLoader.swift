import Foundation
import LopperModel
import LopperPruning
import Yams

extension HardwareProfile {
    /// Loads a profile from YAML. Errors name the file, the line and the field; unknown keys,
    /// missing keys and values out of range are refused.
    public static func load(path: String) throws -> HardwareProfile {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ModelError("cannot read profile: \(error.localizedDescription)", file: path)
        }
        return try parse(yaml: text, file: path)
    }

    /// Loads the profile `reference` names: a YAML file, or a shipped profile's name (`host`,
    /// `raspberry-pi-5`) looked up in `folders` (`Config/profiles`).
    public static func resolve(_ reference: String, searching folders: [String]) throws -> HardwareProfile {
        try load(path: try locate(reference, searching: folders))
    }

    /// The file `reference` names, as `resolve` finds it.
    public static func locate(_ reference: String, searching folders: [String]) throws -> String {
        if FileManager.default.fileExists(atPath: reference) { return reference }
        for folder in folders {
            let candidate = (folder as NSString).appendingPathComponent("\(reference).yaml")
            if FileManager.default.fileExists(atPath: candidate) { return candidate }
        }
        let known = folders.flatMap { folder in
            ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter { $0.hasSuffix(".yaml") }
                .map { String($0.dropLast(5)) }
        }.sorted()
        throw ModelError("no profile '\(reference)': give a YAML file or one of \(known.isEmpty ? "the shipped profiles (none found)" : known.joined(separator: ", "))")
    }

    public static func parse(yaml: String, file: String) throws -> HardwareProfile {
        let root: Yams.Node?
        do { root = try Yams.compose(yaml: yaml) } catch let error as YamlError {
            throw ModelError(error.lopperDescription, file: file)
        }
        guard let root else { throw ModelError("the profile is empty: expected a mapping with name, dtype, peak_gops, …", file: file) }
        let fields = try YAMLFields(root, file: file, path: "")
        let profile = try HardwareProfile(fields)
        try fields.refuseUnknown()
        return profile
    }

    private init(_ f: YAMLFields) throws {
        let dtypeNames = DeploymentType.allCases.map(\.rawValue).joined(separator: ", ")
        name = try f.string("name")
        description = try f.string("description")
        dtype = try f.parsed("dtype", expected: dtypeNames) { DeploymentType(rawValue: $0) }

        let peaks = try f.mapping("peak_gops")
        var peakGops: [DeploymentType: Double] = [:]
        for key in peaks.keys {
            guard let type = DeploymentType(rawValue: key) else { throw peaks.error(key, "is not a number format (\(dtypeNames))") }
            peakGops[type] = try peaks.number(key, above: 0)
        }
        guard peakGops[dtype] != nil else { throw f.error("peak_gops", "has no entry for the deployment dtype '\(dtype.rawValue)'") }
        self.peakGops = peakGops

        let efficiencies = try f.mapping("efficiency")
        var efficiency: [OpClass: Double] = [:]
        for opClass in OpClass.allCases {
            let value = try efficiencies.number(opClass.rawValue, above: 0)
            guard value <= 1 else { throw efficiencies.error(opClass.rawValue, "must be in (0, 1], found \(value)") }
            efficiency[opClass] = value
        }
        try efficiencies.refuseUnknown()
        self.efficiency = efficiency

        memoryBandwidthGBs = try f.number("memory_bandwidth_gb_s", above: 0)
        if let onChip = try f.optionalMapping("on_chip") {
            onChipBytes = try onChip.bytes("bytes")
            onChipBandwidthGBs = try onChip.number("bandwidth_gb_s", above: 0)
            try onChip.refuseUnknown()
        } else {
            onChipBytes = nil
            onChipBandwidthGBs = nil
        }
        let memory = try f.mapping("memory")
        weightMemoryBytes = try memory.bytes("weights")
        activationMemoryBytes = try memory.bytes("activations")
        try memory.refuseUnknown()
        launchOverheadSeconds = try f.number("launch_overhead_us", atLeast: 0) * 1e-6
        runOverheadSeconds = try f.optionalNumber("run_overhead_us", atLeast: 0).map { $0 * 1e-6 } ?? 0
        channelAlignment = try f.integer("channel_alignment", atLeast: 1)

        var speedups: [SparsityPattern: Double] = [:]
        if let sparsity = try f.optionalMapping("sparsity") {
            for key in sparsity.keys {
                let pattern: SparsityPattern
                do { pattern = try SparsityPattern(parsing: key) } catch let error as ModelError {
                    throw sparsity.error(key, error.message)
                }
                speedups[pattern] = try sparsity.number(key, atLeast: 1)
            }
        }
        sparsitySpeedup = speedups
        defaultBudgets = try f.optionalString("default_budgets")
    }
}

/// A YAML mapping read field by field, remembering which keys were read so the rest can be
/// refused, with every error naming the file, the line and the field's dotted path.
struct YAMLFields {
    let file: String
    let path: String
    let mark: Mark?
    private let entries: [(key: String, value: Yams.Node, line: Int?)]
    private let read = ReadKeys()

    private final class ReadKeys { var keys = Set<String>() }

    init(_ node: Yams.Node, file: String, path: String) throws {
        self.file = file
        self.path = path
        mark = node.mark
        guard let mapping = node.mapping else {
            throw ModelError("line \(node.mark?.line ?? 0): expected a mapping of keys to values", file: file, field: path.isEmpty ? nil : path)
        }
        var entries: [(String, Yams.Node, Int?)] = []
        for (key, value) in mapping {
            guard let name = key.string else { throw ModelError("line \(key.mark?.line ?? 0): keys must be text", file: file) }
            if entries.contains(where: { $0.0 == name }) {
                throw ModelError("line \(key.mark?.line ?? 0): '\(name)' is given twice", file: file, field: path.isEmpty ? name : "\(path).\(name)")
            }
            entries.append((name, value, key.mark?.line))
        }
        self.entries = entries
    }

    var keys: [String] { entries.map(\.key) }

    func qualified(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func error(_ key: String, _ message: String) -> ModelError {
        let line = entries.first { $0.key == key }?.line ?? mark?.line
        return ModelError("\(line.map { "line \($0): " } ?? "")\(message)", file: file, field: qualified(key))
    }

    private func value(_ key: String) -> Yams.Node? {
        read.keys.insert(key)
        return entries.first { $0.key == key }?.value
    }

    private func required(_ key: String) throws -> Yams.Node {
        guard let node = value(key) else {
            throw ModelError("line \(mark?.line ?? 1): missing required key '\(key)'", file: file, field: qualified(key))
        }
        return node
    }

    private func scalar(_ key: String) throws -> String {
        let node = try required(key)
        guard let text = node.scalar?.string else { throw error(key, "expected a single value, found a \(node.kindName)") }
        return text
    }

    func string(_ key: String) throws -> String {
        let text = try scalar(key)
        guard !text.isEmpty else { throw error(key, "must not be empty") }
        return text
    }

    func optionalString(_ key: String) throws -> String? {
        guard value(key) != nil else { return nil }
        return try string(key)
    }

    func parsed<T>(_ key: String, expected: String, _ parse: (String) -> T?) throws -> T {
        let text = try scalar(key)
        guard let result = parse(text) else { throw error(key, "'\(text)' is not one of \(expected)") }
        return result
    }

    func number(_ key: String, above minimum: Double) throws -> Double {
        let value = try parsed(key, expected: "a number") { Double($0) }
        guard value.isFinite, value > minimum else { throw error(key, "must be a number above \(minimum.formatted()), found \(value)") }
        return value
    }

    func number(_ key: String, atLeast minimum: Double) throws -> Double {
        let value = try parsed(key, expected: "a number") { Double($0) }
        guard value.isFinite, value >= minimum else { throw error(key, "must be a number of at least \(minimum.formatted()), found \(value)") }
        return value
    }

    func optionalNumber(_ key: String, atLeast minimum: Double) throws -> Double? {
        guard value(key) != nil else { return nil }
        return try number(key, atLeast: minimum)
    }

    func integer(_ key: String, atLeast minimum: Int) throws -> Int {
        let value = try parsed(key, expected: "a whole number") { Int($0) }
        guard value >= minimum else { throw error(key, "must be at least \(minimum), found \(value)") }
        return value
    }

    func bytes(_ key: String) throws -> Int {
        try parsed(key, expected: "a size such as 2MB, 512KiB or 4096") { ByteSize.parse($0) }
    }

    func mapping(_ key: String) throws -> YAMLFields {
        try YAMLFields(required(key), file: file, path: qualified(key))
    }

    func optionalMapping(_ key: String) throws -> YAMLFields? {
        guard let node = value(key) else { return nil }
        return try YAMLFields(node, file: file, path: qualified(key))
    }

    /// Refuses keys nobody read: a misspelt key must not be silently ignored.
    func refuseUnknown() throws {
        if let unknown = entries.first(where: { !read.keys.contains($0.key) }) {
            let known = read.keys.sorted().joined(separator: ", ")
            throw error(unknown.key, "unknown key '\(unknown.key)' (known here: \(known))")
        }
    }
}

extension Yams.Node {
    var kindName: String {
        switch self {
        case .scalar: "value"
        case .mapping: "mapping"
        case .sequence: "list"
        case .alias: "alias"
        }
    }
}

extension YamlError {
    /// The problem with its line, without libyaml's repetition of the whole document.
    var lopperDescription: String {
        switch self {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return "line \(mark.line), column \(mark.column): YAML syntax error: \(problem)"
        default:
            return "YAML error: \(self)"
        }
    }
}
