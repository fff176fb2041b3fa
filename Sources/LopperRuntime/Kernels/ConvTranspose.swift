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
        let out = Tensor(uninitialized: .float32, shape: [batch, filters] + output)
        func to3(_ v: [Int], _ fill: Int) -> [Int] { [Int](repeating: fill, count: 3 - spatial) + v }
        let (i3, k3, s3, d3, p3, o3) = (to3(input, 1), to3(kernel, 1), to3(strides, 1), to3(dilations, 1), to3(padBegin, 0), to3(output, 1))
        let inSize = i3.reduce(1, *), outSize = o3.reduce(1, *), kSize = k3.reduce(1, *)
        let cinG = channels / group
        let rows = coutG * kSize
        let col = UnsafeMutablePointer<Float>.allocate(capacity: rows * inSize)
        defer { col.deallocate() }
        out.f.update(repeating: 0, count: out.count)
        for n in 0..<batch {
            for gi in 0..<group {
                MatMulKernels.sgemm(transA: true, transB: false, m: rows, n: inSize, k: cinG,
                                    a: w.f + gi * cinG * rows, lda: rows, b: x.f + (n * channels + gi * cinG) * inSize, ldb: inSize,
                                    beta: 0, c: col, ldc: inSize)
                let dst = out.f + (n * filters + gi * coutG) * outSize
                // col2im: scatter-add every column entry to the output position it feeds.
                context.parallel(coutG) { range in
                    for co in range {
                        for r in 0..<kSize {
                            let e = r % k3[2], b = (r / k3[2]) % k3[1], a = r / (k3[2] * k3[1])
                            let src = col + (co * kSize + r) * inSize
                            let plane = dst + co * outSize
                            for z in 0..<i3[0] {
                                let oz = z * s3[0] - p3[0] + a * d3[0]
                                if oz < 0 || oz >= o3[0] { continue }
                                for y in 0..<i3[1] {
                                    let oy = y * s3[1] - p3[1] + b * d3[1]
                                    if oy < 0 || oy >= o3[1] { continue }
                                    let line = plane + (oz * o3[1] + oy) * o3[2]
                                    let values = src + (z * i3[1] + y) * i3[2]
                                    for xi in 0..<i3[2] {
                                        let ox = xi * s3[2] - p3[2] + e * d3[2]
                                        if ox >= 0 && ox < o3[2] { line[ox] += values[xi] }
                                    }
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
