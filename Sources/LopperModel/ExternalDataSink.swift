import Foundation
import ONNXProto

/// Collects tensor data into one side file while a model is being written.
///
/// Tensors are appended at 4 KiB-aligned offsets (so readers can map them directly) to a
/// temporary file that `commit` renames into place.
final class ExternalDataSink {
    let fileName: String
    let threshold: Int
    private let finalURL: URL
    private let temporaryURL: URL
    private let handle: FileHandle
    private var offset = 0
    private static let alignment = 4096

    init(directory: URL, fileName: String, threshold: Int) throws {
        guard !fileName.contains("/"), !fileName.isEmpty, fileName != "..", fileName != "." else {
            throw ModelError("external data file name '\(fileName)' must be a plain file name")
        }
        self.fileName = fileName
        self.threshold = threshold
        finalURL = directory.appendingPathComponent(fileName)
        temporaryURL = directory.appendingPathComponent(".\(fileName).tmp-\(getpid())")
        guard FileManager.default.createFile(atPath: temporaryURL.path, contents: nil) else {
            throw ModelError("cannot create '\(temporaryURL.path)'")
        }
        handle = try FileHandle(forWritingTo: temporaryURL)
    }

    deinit {
        try? handle.close()
        try? FileManager.default.removeItem(at: temporaryURL)
    }

    func wants(_ data: TensorData) -> Bool {
        data.elementType != .string && data.bytes.count >= threshold
    }

    /// Appends the tensor and returns `template` pointing at it.
    func store(_ data: TensorData, over template: Onnx_TensorProto) throws -> Onnx_TensorProto {
        let padding = (Self.alignment - offset % Self.alignment) % Self.alignment
        if padding > 0 {
            try handle.write(contentsOf: Data(count: padding))
            offset += padding
        }
        try handle.write(contentsOf: data.bytes)
        var proto = template.clearingData()
        proto.dims = data.shape.map { Int64($0) }
        proto.dataType = data.elementType.rawValue
        proto.dataLocation = .external
        proto.externalData = [("location", fileName), ("offset", String(offset)), ("length", String(data.bytes.count))].map { key, value in
            Onnx_StringStringEntryProto.with { $0.key = key; $0.value = value }
        }
        offset += data.bytes.count
        return proto
    }

    func commit() throws {
        try handle.synchronize()
        try handle.close()
        guard rename(temporaryURL.path, finalURL.path) == 0 else {
            throw ModelError("cannot move the external data into place: \(String(cString: strerror(errno)))", file: finalURL.path)
        }
    }
}
