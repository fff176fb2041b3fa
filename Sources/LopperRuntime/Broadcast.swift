import LopperModel

/// Multidirectional (numpy-style) broadcasting of several shapes, with adjacent dimensions
/// merged where every operand agrees, so that loops run over long contiguous rows.
struct Broadcast {
    let shape: [Int]
    /// Merged output dimensions and, per operand, the element stride along each (0 = broadcast).
    let dims: [Int]
    let operandStrides: [[Int]]

    init(_ shapes: [[Int]]) throws {
        let rank = shapes.map(\.count).max() ?? 0
        let padded = shapes.map { [Int](repeating: 1, count: rank - $0.count) + $0 }
        var out = [Int](repeating: 1, count: rank)
        for d in 0..<rank {
            for s in padded where s[d] != 1 {
                if out[d] == 1 { out[d] = s[d] } else if out[d] != s[d] {
                    throw ModelError("shapes \(shapes.map { "\($0)" }.joined(separator: " and ")) cannot be broadcast together")
                }
            }
        }
        shape = out
        _ = try TensorData.elementCount(out)
        // Merge dimension d into the previous one when every operand broadcasts both or neither.
        var mergedDims: [Int] = []
        var mergedFlags: [[Bool]] = []
        for d in 0..<rank where out[d] != 1 {
            let flags = padded.map { $0[d] == out[d] }
            if let last = mergedFlags.last, last == flags {
                mergedDims[mergedDims.count - 1] *= out[d]
            } else {
                mergedDims.append(out[d])
                mergedFlags.append(flags)
            }
        }
        dims = mergedDims
        operandStrides = padded.indices.map { k in
            var result = [Int](repeating: 0, count: mergedDims.count)
            var step = 1
            for d in stride(from: mergedDims.count - 1, through: 0, by: -1) where mergedFlags[d][k] {
                result[d] = step
                step *= mergedDims[d]
            }
            return result
        }
    }

    var count: Int { shape.reduce(1, *) }

    /// Calls `body(outputOffset, operandOffsets, length, operandInnerStrides)` for each row of
    /// the innermost merged dimension.
    func forEachRow(_ body: (Int, [Int], Int, [Int]) -> Void) {
        let operands = operandStrides.count
        guard let inner = dims.last else {
            body(0, [Int](repeating: 0, count: operands), 1, [Int](repeating: 0, count: operands))
            return
        }
        let innerStrides = operandStrides.map { $0.last! }
        let outer = dims.dropLast().reduce(1, *)
        var index = [Int](repeating: 0, count: max(dims.count - 1, 0))
        var offsets = [Int](repeating: 0, count: operands)
        for row in 0..<outer {
            body(row * inner, offsets, inner, innerStrides)
            // Advance the odometer over the outer dimensions.
            var d = dims.count - 2
            while d >= 0 {
                index[d] += 1
                for k in 0..<operands { offsets[k] += operandStrides[k][d] }
                if index[d] < dims[d] { break }
                for k in 0..<operands { offsets[k] -= operandStrides[k][d] * dims[d] }
                index[d] = 0
                d -= 1
            }
        }
    }
}

extension Broadcast {
    /// Length of the innermost merged dimension; the output is `rows` rows of this length.
    var inner: Int { dims.last ?? 1 }
    var rows: Int { dims.dropLast().reduce(1, *) }

    /// Element stride of `operand` along the innermost dimension (0 when broadcast).
    func innerStride(_ operand: Int) -> Int { operandStrides[operand].last ?? 0 }

    /// Offset of `operand`'s first element for output row `row`.
    func offset(_ operand: Int, row: Int) -> Int {
        var rest = row, offset = 0
        for d in stride(from: dims.count - 2, through: 0, by: -1) {
            offset += (rest % dims[d]) * operandStrides[operand][d]
            rest /= dims[d]
        }
        return offset
    }
}

/// A function of two elements. Kernels pass a concrete type rather than a closure so that the
/// loops below are specialised and inlined, including inside the per-thread closures.
protocol ElementFunction {
    associatedtype A
    associatedtype B
    associatedtype C
    func callAsFunction(_ a: A, _ b: B) -> C
}

/// Applies `op` elementwise over two broadcast operands, splitting rows (or one long row)
/// across threads.
func broadcastBinary<F: ElementFunction>(_ a: UnsafePointer<F.A>, _ b: UnsafePointer<F.B>, _ out: UnsafeMutablePointer<F.C>,
                                         _ plan: Broadcast, _ context: ExecutionContext, _ op: F) {
    let inner = plan.inner, rows = plan.rows
    let sa = plan.innerStride(0), sb = plan.innerStride(1)
    if rows == 1 {
        context.parallel(inner, grain: 1 << 16) { range in
            binaryLine(a + range.lowerBound * sa, b + range.lowerBound * sb, out + range.lowerBound, range.count, sa, sb, op)
        }
        return
    }
    // Row offsets computed up front: threads then share no reference-counted state.
    var offsets = [Int](repeating: 0, count: 2 * rows)
    for row in 0..<rows {
        offsets[2 * row] = plan.offset(0, row: row)
        offsets[2 * row + 1] = plan.offset(1, row: row)
    }
    offsets.withUnsafeBufferPointer { table in
        let table = table.baseAddress!
        context.parallel(rows, cost: rows * inner) { range in
            for row in range {
                binaryLine(a + table[2 * row], b + table[2 * row + 1], out + row * inner, inner, sa, sb, op)
            }
        }
    }
}

@inline(__always)
private func binaryLine<F: ElementFunction>(_ pa: UnsafePointer<F.A>, _ pb: UnsafePointer<F.B>, _ po: UnsafeMutablePointer<F.C>,
                                            _ n: Int, _ sa: Int, _ sb: Int, _ op: F) {
    switch (sa, sb) {
    case (1, 1): for k in 0..<n { po[k] = op(pa[k], pb[k]) }
    case (1, 0): let y = pb[0]; for k in 0..<n { po[k] = op(pa[k], y) }
    case (0, 1): let x = pa[0]; for k in 0..<n { po[k] = op(x, pb[k]) }
    default: let v = op(pa[0], pb[0]); for k in 0..<n { po[k] = v }
    }
}
