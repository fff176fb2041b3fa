import Foundation
import LopperModel

/// Calibration inputs: one array per model input, samples along the first axis, cut into batches.
///
/// Every problem (a missing or unknown input name, a wrong element type or sample shape, inputs
/// with different sample counts) is reported before anything runs, naming the file and array.
public struct Calibration: Sendable {
    /// Samples used (at most `limit`), and samples in the file.
    public let samples: Int
    public let available: Int
    public let batches: [[String: Tensor]]

    /// - Parameters:
    ///   - path: a `.npz` with one array per graph input (by name), or a `.npy` for a one-input model.
    ///   - limit: use at most this many samples (the first ones).
    public init(path: String, for model: Model, limit: Int? = nil, batchSize: Int = 8) throws {
        guard batchSize >= 1 else { throw ModelError("batch size must be at least 1, got \(batchSize)") }
        let inputs = model.graph.feedInputs
        var arrays: [String: TensorData] = [:]
        switch try NumPy.format(of: path) {
        case .array:
            guard inputs.count == 1 else {
                throw ModelError("is a single array, but the model has \(inputs.count) inputs (\(inputs.map(\.name).joined(separator: ", "))); use a .npz with one array per input", file: path)
            }
            arrays[inputs[0].name] = try NumPy.read(path: path)
        case .archive:
            for (name, data) in try NumPy.readArchive(path: path) { arrays[name] = data }
        }
        for name in arrays.keys where !inputs.contains(where: { $0.name == name }) {
            throw ModelError("holds array '\(name)', which is not a model input (inputs: \(inputs.map(\.name).joined(separator: ", ")))", file: path)
        }
        var counts: [String: Int] = [:]
        for input in inputs {
            guard let data = arrays[input.name] else {
                throw ModelError("has no array for model input '\(input.name)'", file: path)
            }
            try Self.check(data, against: input, file: path)
            if let fixed = input.type?.shape?.first?.value, fixed != batchSize {
                throw ModelError("the model's input '\(input.name)' has a fixed batch size of \(fixed); use a batch size of \(fixed)",
                                 file: path)
            }
            counts[input.name] = data.shape[0]
        }
        let distinct = Set(counts.values)
        guard distinct.count <= 1 else {
            throw ModelError("arrays hold different sample counts: " + counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "), file: path)
        }
        let available = distinct.first ?? 0
        guard available > 0 else { throw ModelError("holds no samples", file: path) }
        let used = min(available, limit ?? available)
        samples = used
        self.available = available
        batches = try stride(from: 0, to: used, by: batchSize).map { start in
            let end = min(start + batchSize, used)
            var batch: [String: Tensor] = [:]
            for input in inputs {
                let data = arrays[input.name]!
                let rows = try data.keeping(axis: 0, indices: Array(start..<end))
                batch[input.name] = try Tensor(rows)
            }
            return batch
        }
    }

    private static func check(_ data: TensorData, against input: ValueInfo, file: String) throws {
        let field = "array '\(input.name)'"
        if data.elementType.isFloatingPoint {
            let values = data.floats()
            if let bad = values.firstIndex(where: { !$0.isFinite }) {
                let perSample = max(1, data.shape.dropFirst().reduce(1, *))
                let value = values[bad].isNaN ? "NaN" : values[bad] < 0 ? "-inf" : "inf"
                throw ModelError("holds \(value) at sample \(bad / perSample), element \(bad % perSample) of it (flat index \(bad)); calibration data must be finite",
                                 file: file, field: field)
            }
        }
        guard let type = input.type else { return }
        if let declared = type.elementType, declared.storageKind != data.elementType.storageKind {
            throw ModelError("is \(data.elementType), but the model input is \(declared)", file: file, field: field)
        }
        guard let dims = type.shape else { return }
        guard data.shape.count == dims.count else {
            throw ModelError("has shape \(data.shape) (samples first), but the model input has rank \(dims.count) \(type)", file: file, field: field)
        }
        for (axis, dim) in dims.enumerated().dropFirst() {
            if let size = dim.value, size != data.shape[axis] {
                throw ModelError("has shape \(data.shape), but the model input needs \(size) on axis \(axis) (\(type))", file: file, field: field)
            }
        }
    }
}
