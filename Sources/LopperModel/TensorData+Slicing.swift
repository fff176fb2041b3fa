import Foundation

extension TensorData {
    /// The tensor with only the given positions along `axis`, in the order given.
    public func keeping(axis: Int, indices: [Int]) throws -> TensorData {
        guard axis >= 0, axis < shape.count else { throw ModelError("axis \(axis) is out of range for shape \(shape)") }
        guard indices.allSatisfy({ $0 >= 0 && $0 < shape[axis] }) else {
            throw ModelError("indices out of range for axis \(axis) of size \(shape[axis])")
        }
        var newShape = shape
        newShape[axis] = indices.count
        let outer = shape[..<axis].reduce(1, *)
        let inner = shape[(axis + 1)...].reduce(1, *)
        if elementType == .string {
            var picked: [Data] = []
            for o in 0..<outer { for i in indices { picked += strings[(o * shape[axis] + i) * inner..<(o * shape[axis] + i + 1) * inner] } }
            return try TensorData(strings: picked, shape: newShape)
        }
        let run = inner * elementType.byteSize
        var out = Data(count: outer * indices.count * run)
        bytes.withUnsafeBytes { source in
            out.withUnsafeMutableBytes { target in
                var write = 0
                for o in 0..<outer {
                    for i in indices {
                        let read = (o * shape[axis] + i) * run
                        target.baseAddress!.advanced(by: write).copyMemory(from: source.baseAddress!.advanced(by: read), byteCount: run)
                        write += run
                    }
                }
            }
        }
        return try TensorData(elementType: elementType, shape: newShape, bytes: out)
    }
}
