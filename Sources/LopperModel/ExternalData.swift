import Foundation
import ONNXProto

/// Side files that hold tensor data for models stored with ONNX external data.
///
/// Locations are resolved relative to the model's folder and must stay inside it: an absolute
/// path, a `..` component or a symbolic link that leads out is an error. Each file is mapped
/// once and shared by all tensors that live in it.
final class ExternalDataFiles: @unchecked Sendable {
    let directory: URL
    private var mapped: [String: Data] = [:]

    /// The side files read so far (all of a model's, once it is loaded), as written in the model.
    var locations: [String] { mapped.keys.sorted() }

    init(modelPath: String) {
        directory = URL(fileURLWithPath: modelPath).deletingLastPathComponent().standardizedFileURL
    }

    /// The bytes of one tensor as described by its `external_data` entries.
    func bytes(for tensor: Onnx_TensorProto) throws -> Data {
        var entries: [String: String] = [:]
        for entry in tensor.externalData { entries[entry.key] = entry.value }
        guard let location = entries["location"], !location.isEmpty else {
            throw ModelError("external_data has no 'location'")
        }
        let offset = try Self.integer(entries["offset"] ?? "0", key: "offset")
        let file = try mappedFile(location)
        guard offset <= file.count else {
            throw ModelError("external data offset \(offset) is past the end of '\(location)' (\(file.count) bytes)")
        }
        let length = try entries["length"].map { try Self.integer($0, key: "length") } ?? (file.count - offset)
        guard length <= file.count - offset else {
            throw ModelError("external data '\(location)' is too short: needs \(length) bytes at offset \(offset), file has \(file.count)")
        }
        let start = file.startIndex + offset
        return file[start..<(start + length)]
    }

    private func mappedFile(_ location: String) throws -> Data {
        if let data = mapped[location] { return data }
        let path = try resolve(location)
        let data: Data
        do { data = try MappedFile.map(path) } catch let error as ModelError {
            throw ModelError("external data file '\(location)': \(error.message)")
        }
        mapped[location] = data
        return data
    }

    /// The absolute path for `location`, refusing anything that would leave the model's folder.
    func resolve(_ location: String) throws -> String {
        guard !location.hasPrefix("/"), !location.contains("\\") else {
            throw ModelError("external data location '\(location)' must be a relative path inside the model's folder")
        }
        let components = location.split(separator: "/")
        guard !components.contains(".."), !components.isEmpty else {
            throw ModelError("external data location '\(location)' escapes the model's folder")
        }
        let url = directory.appendingPathComponent(location).standardizedFileURL
        let base = directory.resolvingSymlinksInPath().path
        let real = url.resolvingSymlinksInPath().path
        guard real.hasPrefix(base.hasSuffix("/") ? base : base + "/") else {
            throw ModelError("external data location '\(location)' leads out of the model's folder through a link")
        }
        return url.path
    }

    private static func integer(_ text: String, key: String) throws -> Int {
        guard let value = Int(text), value >= 0 else {
            throw ModelError("external_data '\(key)' must be a non-negative integer, found '\(text)'")
        }
        return value
    }
}
