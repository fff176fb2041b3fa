import Foundation
import ONNXProto
import SwiftProtobuf

/// An ONNX model: the main graph plus model-level fields (opsets, metadata, functions …).
///
/// Loading maps the file and any external-data side files into memory instead of reading them,
/// so a model of several GiB costs little more RAM than the pages actually touched.
public struct Model: Sendable {
    /// Everything except the graph; written back as it was.
    var proto: Onnx_ModelProto
    public var graph: Graph
    /// The file the model came from, for messages.
    public let path: String?
    /// External-data side files the model was loaded with, relative to its folder.
    public let externalDataLocations: [String]

    /// Loads a model file, resolving external data relative to the file's folder.
    public static func load(path: String) throws -> Model {
        do {
            let data = try MappedFile.map(path)
            return try Model(serialized: data, path: path, external: ExternalDataFiles(modelPath: path))
        } catch {
            throw error.asModelError(file: path)
        }
    }

    /// Parses a serialized model. Without a file there is no folder for external data.
    public init(serialized data: Data, path: String? = nil) throws {
        try self.init(serialized: data, path: path, external: nil)
    }

    private init(serialized data: Data, path: String?, external: ExternalDataFiles?) throws {
        var model: Onnx_ModelProto
        do {
            model = try Onnx_ModelProto(serializedBytes: data)
        } catch {
            throw ModelError("is not a valid ONNX protobuf (\(Self.describe(error))); the file may be truncated or not a model", file: path)
        }
        guard model.hasGraph else { throw ModelError("has no graph", file: path) }
        guard model.irVersion > 0 else { throw ModelError("ir_version is missing; this is probably not an ONNX model", file: path) }
        let graphProto = model.graph
        model.clearGraph()
        proto = model
        self.path = path
        for opset in model.opsetImport where opset.version < 1 {
            throw ModelError("opset_import for domain '\(opset.domain)' has version \(opset.version)", file: path)
        }
        do {
            graph = try Graph(proto: graphProto, external: external)
        } catch {
            throw error.asModelError(file: path ?? "model")
        }
        externalDataLocations = external?.locations ?? []
    }

    public var irVersion: Int { Int(proto.irVersion) }

    /// The newest IR version and default-domain opset Lopper's schema, rules and kernels follow
    /// (ONNX 1.16).
    public static let newestIRVersion = 10
    public static let newestOpset = 21

    /// What a user should hear before trusting results: an IR version or opset newer than
    /// Lopper knows (operators whose meaning changed since would run with older semantics).
    public var versionWarnings: [String] {
        var warnings: [String] = []
        if irVersion > Self.newestIRVersion {
            warnings.append("\(path ?? "model"): IR version \(irVersion) is newer than the newest Lopper knows (\(Self.newestIRVersion)); fields it added are kept but not understood")
        }
        if let opset = opset(), opset > Self.newestOpset {
            warnings.append("\(path ?? "model"): opset \(opset) is newer than the newest Lopper knows (\(Self.newestOpset)); operators whose meaning changed since run as in opset \(Self.newestOpset)")
        }
        return warnings
    }
    public var producer: String { [proto.producerName, proto.producerVersion].filter { !$0.isEmpty }.joined(separator: " ") }

    /// The opset version imported for a domain (`""` and `"ai.onnx"` are the same).
    public func opset(_ domain: String = "") -> Int? {
        let wanted = domain == "ai.onnx" ? "" : domain
        return proto.opsetImport.first { ($0.domain == "ai.onnx" ? "" : $0.domain) == wanted }.map { Int($0.version) }
    }

    public var opsets: [(domain: String, version: Int)] {
        proto.opsetImport.map { ($0.domain, Int($0.version)) }
    }

    /// `metadata_props` in file order (exporters keep label maps and dictionaries here).
    public var metadata: [(key: String, value: String)] {
        get { proto.metadataProps.map { ($0.key, $0.value) } }
        set {
            proto.metadataProps = newValue.map { entry in
                Onnx_StringStringEntryProto.with { $0.key = entry.key; $0.value = entry.value }
            }
        }
    }

    /// The model as one protobuf message with every tensor inline.
    public func serialized() throws -> Data {
        var model = proto
        model.graph = try graph.encoded(externalSink: nil)
        return try model.serializedData()
    }

    /// Writes the model to `path`. Tensors go to a side file when the policy says so; both files
    /// are written to temporary names and renamed into place, so an existing model (even the one
    /// this was loaded from, whose data may still be mapped) is never left half written.
    public func save(to path: String, externalData policy: ExternalDataPolicy = .automatic) throws {
        do {
            let sinkFile = policy.sideFileName(modelPath: path, totalBytes: graph.initializers.values.reduce(0) { $0 + $1.bytes.count })
            let sink = try sinkFile.map { try ExternalDataSink(directory: URL(fileURLWithPath: path).deletingLastPathComponent(), fileName: $0, threshold: policy.threshold) }
            var model = proto
            model.graph = try graph.encoded(externalSink: sink)
            let data = try model.serializedData()
            guard data.count < Int(Int32.max) else {
                throw ModelError("is \(data.count) bytes with inline tensors, over protobuf's 2 GiB limit; save with external data")
            }
            try sink?.commit()
            try data.write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw error.asModelError(file: path)
        }
    }

    private static func describe(_ error: Error) -> String {
        switch error {
        case BinaryDecodingError.truncated: return "truncated"
        case BinaryDecodingError.malformedProtobuf: return "malformed protobuf"
        case BinaryDecodingError.invalidUTF8: return "a string field holds invalid UTF-8"
        case BinaryDecodingError.messageDepthLimit: return "nested too deeply"
        default: return "\(error)"
        }
    }
}

/// Where `Model.save` puts tensor data.
public enum ExternalDataPolicy: Sendable {
    /// Every tensor inside the protobuf (fails past 2 GiB).
    case inline
    /// Tensors of at least `threshold` bytes in one side file named `fileName`, beside the model.
    case sideFile(fileName: String, threshold: Int)
    /// A side file `<model>.data` once tensors total more than 1.5 GiB; inline otherwise.
    case automatic

    var threshold: Int {
        if case .sideFile(_, let threshold) = self { return threshold }
        return 1024
    }

    func sideFileName(modelPath: String, totalBytes: Int) -> String? {
        switch self {
        case .inline: return nil
        case .sideFile(let name, _): return name
        case .automatic:
            return totalBytes > 1_536 << 20 ? URL(fileURLWithPath: modelPath).lastPathComponent + ".data" : nil
        }
    }
}
