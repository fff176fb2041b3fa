import LopperModel

/// Transposed convolution: GEMM of the transposed weight with the input, then col2im.
struct ConvTranspose: ActivationFusing {
    let window: WindowAttributes
    let group: Int
    let outputPadding: [Int]?
    let outputShape: [Int]?
    let activation: Activation?

    func fusing(_ activation: Activation) -> Kernel {
        ConvTranspose(window: window, group: group, outputPadding: outputPadding, outputShape: outputShape, activation: activation)
    }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), w = try inputs.required(1), bias = inputs.optional(2)
        try x.requireFloat("X")
        try w.requireFloat("W")
        let spatial = x.rank - 2
        guard (1...3).contains(spatial), w.rank == x.rank else {
            throw ModelError("input X \(x.shape) and weight W \(w.shape) must have the same rank with 1 to 3 spatial axes")
        }
        let (batch, channels) = (x.shape[0], x.shape[1])
        guard group >= 1, channels % group == 0, w.shape[0] == channels else {
            throw ModelError("input X has \(channels) channels, but W \(w.shape) expects \(w.shape[0]) (group \(group))")
        }
        let coutG = w.shape[1], filters = coutG * group
        if let bias, bias.count != filters { throw ModelError("bias B has \(bias.count) elements, expected \(filters)") }
        let kernel = Array(w.shape[2...])
        let input = Array(x.shape[2...])
        let (strides, dilations, explicitPads) = try window.resolved(spatial: spatial)
        let extra = outputPadding ?? [Int](repeating: 0, count: spatial)
        guard extra.count == spatial else { throw ModelError("output_padding \(extra) does not fit \(spatial) spatial axes") }

        var padBegin = Array(explicitPads[0..<spatial])
        var output: [Int] = []
        for axis in 0..<spatial {
            let extent = dilations[axis] * (kernel[axis] - 1) + 1
            let full = strides[axis] * (input[axis] - 1) + extra[axis] + extent
            var target: Int? = nil
            if let shape = outputShape { target = shape[shape.count - spatial + axis] }
            else if window.autoPad == "SAME_UPPER" || window.autoPad == "SAME_LOWER" { target = input[axis] * strides[axis] }
            if let target {
                let total = Swift.max(full - target, 0)
                // As ONNX Runtime and the test data do: the larger half goes first only for SAME_LOWER.
                padBegin[axis] = window.autoPad == "SAME_LOWER" ? total - total / 2 : total / 2
                output.append(target)
            } else if window.autoPad == "VALID" {
                padBegin[axis] = 0
                output.append(full)
            } else {
                output.append(full - explicitPads[axis] - explicitPads[axis + spatial])
            }
            guard output[axis] > 0 else { throw ModelError("output size on spatial axis \(axis) would be \(output[axis])") }
        }
        let out = try Tensor(uninitialized: .float32, shape: [batch, filters] + output)
        func to3(_ v: [Int], _ fill: Int) -> [Int] { [Int](repeating: fill, count: 3 - spatial) + v }
        let (i3, k3, s3, d3, p3, o3) = (to3(input, 1), to3(kernel, 1), to3(strides, 1), to3(dilations, 1), to3(padBegin, 0), to3(output, 1))
        let inSize = i3.reduce(1, *), outSize = o3.reduce(1, *), kSize = k3.reduce(1, *)
        let cinG = channels / group
        let rows = coutG * kSize
        out.f.update(repeating: 0, count: out.count)
        let (I0, I1, I2) = (i3[0], i3[1], i3[2]), (O0, O1, O2) = (o3[0], o3[1], o3[2])
        let (K1, K2) = (k3[1], k3[2]), (S0, S1, S2) = (s3[0], s3[1], s3[2])
        let (D0, D1, D2) = (d3[0], d3[1], d3[2]), (P0, P1, P2) = (p3[0], p3[1], p3[2])
        let (src, weights, dst) = (x.f, w.f, out.f)
        // Whole (image, group) pairs per thread when there are enough of them; otherwise the
        // threads share each pair's product and scatter.
        let pairs = batch * group
        let perPair = pairs >= context.threads ? ExecutionContext(threads: 1) : context
        let across = pairs >= context.threads ? context : ExecutionContext(threads: 1)
        across.parallel(pairs, cost: pairs * rows * inSize * cinG) { items in
            let col = UnsafeMutablePointer<Float>.allocate(capacity: rows * inSize)
            defer { col.deallocate() }
            for item in items {
                let n = item / group, gi = item % group
                MatMulKernels.parallelSgemm(transA: true, transB: false, m: rows, n: inSize, k: cinG,
                                            a: weights + gi * cinG * rows, lda: rows, b: src + (n * channels + gi * cinG) * inSize, ldb: inSize,
                                            beta: 0, c: col, ldc: inSize, perPair)
                let base = dst + (n * filters + gi * coutG) * outSize
                // col2im: scatter-add every column entry to the output position it feeds.
                perPair.parallel(coutG, cost: rows * inSize) { range in
                    for co in range {
                        for r in 0..<kSize {
                            let e = r % K2, b = (r / K2) % K1, a = r / (K2 * K1)
                            let values = col + (co * kSize + r) * inSize
                            // Input columns whose output column lands inside the output.
                            let shift = e * D2 - P2
                            let lo = Swift.min(I2, shift >= 0 ? 0 : (-shift + S2 - 1) / S2)
                            let hi = Swift.max(lo, Swift.min(I2, O2 - 1 - shift >= 0 ? (O2 - 1 - shift) / S2 + 1 : 0))
                            let plane = base + co * outSize
                            for z in 0..<I0 {
                                let oz = z * S0 - P0 + a * D0
                                if oz < 0 || oz >= O0 { continue }
                                for y in 0..<I1 {
                                    let oy = y * S1 - P1 + b * D1
                                    if oy < 0 || oy >= O1 { continue }
                                    let line = plane + (oz * O1 + oy) * O2
                                    let row = values + (z * I1 + y) * I2
                                    for xi in lo..<hi { line[xi &* S2 &+ shift] += row[xi] }
                                }
                            }
                        }
                    }
                }
            }
        }
        ConvKernels.finish(out.f, planes: batch * filters, size: outSize, channels: filters,
                           bias: bias?.f, activation: activation, context)
        return [out]
    }
}
