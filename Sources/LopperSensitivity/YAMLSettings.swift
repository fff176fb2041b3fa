import Foundation
import LopperModel
import Yams

/// A YAML settings file read with errors a user can act on: a syntax error, an unknown key or a
/// bad value names its line, and an empty file says so.
struct YAMLSettings {
    /// The keys a mapping may hold; a key with a schema of its own holds a nested mapping.
    indirect enum Schema {
        case value
        case mapping([String: Schema])
    }

    let file: String
    let root: Yams.Node

    /// Parses `text` and checks its keys against `schema`.
    init(_ text: String, file: String, schema: Schema, needs what: String) throws {
        self.file = file
        let composed: Yams.Node?
        do { composed = try Yams.compose(yaml: text) } catch let error as YamlError { throw Self.syntaxError(error, file: file) }
        guard let composed else { throw ModelError("is empty; a sweep file needs at least \(what)", file: file) }
        root = composed
        try check(root, against: schema, at: [])
    }

    /// Decodes the document, naming the line of a value that does not fit.
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        do {
            return try YAMLDecoder().decode(type, from: root)
        } catch let DecodingError.keyNotFound(key, _) {
            throw ModelError("is missing the required field '\(key.stringValue)'", file: file)
        } catch let DecodingError.typeMismatch(expected, context), let DecodingError.valueNotFound(expected, context) {
            throw valueError(context, "must be \(Self.describe(expected))")
        } catch let DecodingError.dataCorrupted(context) {
            throw valueError(context, context.debugDescription)
        }
    }

    private func valueError(_ context: DecodingError.Context, _ message: String) -> ModelError {
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }
        let node = node(at: context.codingPath)
        let found = node?.scalar.map { ", got '\($0.string)'" } ?? ""
        let field = path.isEmpty ? nil : "field '\(path.joined(separator: "."))'"
        return ModelError(message + found, file: file, field: [node?.mark.map { "line \($0.line)" }, field].compactMap { $0 }.joined(separator: ": "))
    }

    private func node(at path: [CodingKey]) -> Yams.Node? {
        path.reduce(Optional(root)) { (node: Yams.Node?, key: CodingKey) -> Yams.Node? in
            guard let node else { return nil }
            if let index = key.intValue, let sequence = node.sequence { return index < sequence.count ? sequence[index] : nil }
            return node.mapping?[key.stringValue]
        }
    }

    private func check(_ node: Yams.Node, against schema: Schema, at path: [String]) throws {
        guard case .mapping(let fields) = schema else { return }
        let line = node.mark.map { "line \($0.line)" }
        guard let mapping = node.mapping else {
            throw ModelError(path.isEmpty ? "must be a mapping of settings (key: value lines)" : "'\(path.joined(separator: "."))' must be a mapping",
                             file: file, field: line)
        }
        for (key, value) in mapping {
            let name = key.string ?? "\(key)"
            guard let inner = fields[name] else {
                let known = fields.keys.sorted()
                let near = known.min { Self.distance($0, name) < Self.distance($1, name) }.flatMap { Self.distance($0, name) <= 2 ? $0 : nil }
                let hint = near.map { "; did you mean '\($0)'?" } ?? ""
                throw ModelError("unknown setting '\((path + [name]).joined(separator: "."))'\(hint) (known\(path.isEmpty ? "" : " in \(path.joined(separator: "."))"): \(known.joined(separator: ", ")))",
                                 file: file, field: key.mark.map { "line \($0.line)" })
            }
            try check(value, against: inner, at: path + [name])
        }
    }

    static func syntaxError(_ error: YamlError, file: String) -> ModelError {
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let while_ = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return ModelError("is not valid YAML: \(problem)\(while_)", file: file, field: "line \(mark.line), column \(mark.column)")
        default:
            return ModelError("is not valid YAML: \(error)", file: file)
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Double.Type: return "a number"
        case is String.Type: return "a string"
        default: return "\(type)"
        }
    }

    /// Edit distance, for "did you mean".
    static func distance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        var row = Array(0...b.count)
        for i in 1...max(1, a.count) where !a.isEmpty {
            var previous = row[0]
            row[0] = i
            for j in stride(from: 1, through: b.count, by: 1) {
                let saved = row[j]
                row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                previous = saved
            }
        }
        return a.isEmpty ? b.count : row[b.count]
    }
}
