import LopperModel

/// Convolution (1-D to 3-D): im2col and OpenBLAS GEMM, or a direct kernel for depthwise.
enum ConvKernels {
    static let all: [KernelVersion] = [
        KernelVersion("Conv") { setup in
            Conv(window: try WindowAttributes(setup.node), group: try setup.node.int("group", default: 1), activation: nil)
        },
        KernelVersion("ConvTranspose") { setup in
            let node = setup.node
            return ConvTranspose(window: try WindowAttributes(node), group: try node.int("group", default: 1),
                                 outputPadding: try node.ints("output_padding"), outputShape: try node.ints("output_shape"),
                                 activation: nil)
        },
    ]

    /// Adds a per-channel bias and applies the fused activation over `planes` planes of `size`
    /// floats, plane `p` belonging to channel `p % channels`.
    static func finish(_ out: UnsafeMutablePointer<Float>, planes: Int, size: Int, channels: Int,
                       bias: UnsafePointer<Float>?, activation: Activation?, _ context: ExecutionContext) {
        if bias == nil && activation == nil { return }
        context.parallel(planes, grain: Swift.max(1, 16384 / Swift.max(size, 1))) { range in
            for plane in range {
                let p = out + plane * size
                if let bias {
                    let v = bias[plane % channels]
                    if v != 0 { for k in 0..<size { p[k] += v } }
                }
                activation?.apply(p, size)
            }
        }
    }
}

struct Conv: ActivationFusing {
    let window: WindowAttributes
    let group: Int
    let activation: Activation?

    func fusing(_ activation: Activation) -> Kernel { Conv(window: window, group: group, activation: activation) }

    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0), w = try inputs.required(1), bias = inputs.optional(2)
        try x.requireFloat("X")
        try w.requireFloat("W")
        let spatial = x.rank - 2
        guard (1...3).contains(spatial) else { throw ModelError("input X must have 1 to 3 spatial axes, found shape \(x.shape)") }
        guard w.rank == x.rank else { throw ModelError("weight W of shape \(w.shape) does not fit input X of shape \(x.shape)") }
        let (batch, channels, filters) = (x.shape[0], x.shape[1], w.shape[0])
        guard group >= 1, channels % group == 0, filters % group == 0, w.shape[1] * group == channels else {
            throw ModelError("input X has \(channels) channels, but W \(w.shape) with group \(group) expects \(w.shape[1] * group)")
        }
        if let bias, bias.count != filters { throw ModelError("bias B has \(bias.count) elements, expected \(filters)") }
        let kernel = Array(w.shape[2...])
        if let declared = window.kernelShape, declared != kernel {
            throw ModelError("kernel_shape \(declared) differs from the weight's \(kernel)")
        }
        let geometry = try Window(input: Array(x.shape[2...]), kernel: kernel, attributes: window)
        let out = Tensor(uninitialized: .float32, shape: [batch, filters] + geometry.output)
        let g = geometry.as3D
        let inSize = g.input.reduce(1, *), outSize = g.output.reduce(1, *)

        if group == channels && filters == channels && group > 1 {
            depthwise(x.f, w.f, out.f, planes: batch * channels, channels: channels, g, context)
        } else {
            let cinG = channels / group, coutG = filters / group
            let kSize = kernel.reduce(1, *)
            let rows = cinG * kSize
            let pointwise = kSize == 1 && g.strides == [1, 1, 1] && g.pads == [0, 0, 0] && inSize == outSize
            let col = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: rows * outSize)
            defer { col?.deallocate() }
            for n in 0..<batch {
                for gi in 0..<group {
                    let src = x.f + (n * channels + gi * cinG) * inSize
                    if let col { im2col(src, channels: cinG, g, col, context) }
                    MatMulKernels.sgemm(transA: false, transB: false, m: coutG, n: outSize, k: rows,
                                        a: w.f + gi * coutG * rows, lda: rows, b: col ?? UnsafeMutablePointer(mutating: src), ldb: outSize,
                                        beta: 0, c: out.f + (n * filters + gi * coutG) * outSize, ldc: outSize)
                }
            }
        }
        ConvKernels.finish(out.f, planes: batch * filters, size: outSize, channels: filters,
                           bias: bias?.f, activation: activation, context)
        return [out]
    }

    /// Unfolds the windows of `channels` input planes into rows of `col`: one row per
    /// (channel, kernel offset), one column per output position; padding reads as zero.
    private func im2col(_ src: UnsafePointer<Float>, channels: Int, _ g: (input: [Int], kernel: [Int], strides: [Int], dilations: [Int], pads: [Int], output: [Int]),
                        _ col: UnsafeMutablePointer<Float>, _ context: ExecutionContext) {
        let (D, H, W) = (g.input[0], g.input[1], g.input[2])
        let (kd, kh, kw) = (g.kernel[0], g.kernel[1], g.kernel[2])
        let (od, oh, ow) = (g.output[0], g.output[1], g.output[2])
        let (sd, sh, sw) = (g.strides[0], g.strides[1], g.strides[2])
        let (dd, dh, dw) = (g.dilations[0], g.dilations[1], g.dilations[2])
        let (pd, ph, pw) = (g.pads[0], g.pads[1], g.pads[2])
        let outSize = od * oh * ow
        context.parallel(channels * kd * kh * kw, grain: Swift.max(1, 8192 / Swift.max(outSize, 1))) { rows in
            for row in rows {
                let e = row % kw, b = (row / kw) % kh, a = (row / (kw * kh)) % kd, c = row / (kw * kh * kd)
                var dst = col + row * outSize
                let x0 = e * dw - pw
                // Output columns whose input column is inside the image.
                let lo = Swift.min(ow, x0 >= 0 ? 0 : (-x0 + sw - 1) / sw)
                let hi = Swift.max(lo, Swift.min(ow, W - x0 > 0 ? (W - 1 - x0) / sw + 1 : 0))
                for z in 0..<od {
                    let iz = z * sd - pd + a * dd
                    if iz < 0 || iz >= D { dst.update(repeating: 0, count: oh * ow); dst += oh * ow; continue }
                    for y in 0..<oh {
                        let iy = y * sh - ph + b * dh
                        if iy < 0 || iy >= H { dst.update(repeating: 0, count: ow); dst += ow; continue }
                        let line = src + ((c * D + iz) * H + iy) * W + x0
                        for xo in 0..<lo { dst[xo] = 0 }
                        if sw == 1 {
                            (dst + lo).update(from: line + lo, count: hi - lo)
                        } else {
                            for xo in lo..<hi { dst[xo] = line[xo * sw] }
                        }
                        for xo in hi..<ow { dst[xo] = 0 }
                        dst += ow
                    }
                }
            }
        }
    }

    /// One filter per channel: accumulates each kernel tap over whole output rows.
    private func depthwise(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>, _ out: UnsafeMutablePointer<Float>,
                           planes: Int, channels: Int, _ g: (input: [Int], kernel: [Int], strides: [Int], dilations: [Int], pads: [Int], output: [Int]),
                           _ context: ExecutionContext) {
        let (D, H, W) = (g.input[0], g.input[1], g.input[2])
        let (kd, kh, kw) = (g.kernel[0], g.kernel[1], g.kernel[2])
        let (od, oh, ow) = (g.output[0], g.output[1], g.output[2])
        let (sd, sh, sw) = (g.strides[0], g.strides[1], g.strides[2])
        let (dd, dh, dw) = (g.dilations[0], g.dilations[1], g.dilations[2])
        let (pd, ph, pw) = (g.pads[0], g.pads[1], g.pads[2])
        let inSize = D * H * W, outSize = od * oh * ow, taps = kd * kh * kw
        context.parallel(planes) { range in
            for plane in range {
                let src = x + plane * inSize, dst = out + plane * outSize
                let filter = w + (plane % channels) * taps
                dst.update(repeating: 0, count: outSize)
                for a in 0..<kd { for b in 0..<kh { for e in 0..<kw {
                    let weight = filter[(a * kh + b) * kw + e]
                    let x0 = e * dw - pw
                    let lo = Swift.min(ow, x0 >= 0 ? 0 : (-x0 + sw - 1) / sw)
                    let hi = Swift.max(lo, Swift.min(ow, W - x0 > 0 ? (W - 1 - x0) / sw + 1 : 0))
                    for z in 0..<od {
                        let iz = z * sd - pd + a * dd
                        if iz < 0 || iz >= D { continue }
                        for y in 0..<oh {
                            let iy = y * sh - ph + b * dh
                            if iy < 0 || iy >= H { continue }
                            let line = src + (iz * H + iy) * W + x0
                            let row = dst + (z * oh + y) * ow
                            if sw == 1 {
                                for xo in lo..<hi { row[xo] += weight * line[xo] }
                            } else {
                                for xo in lo..<hi { row[xo] += weight * line[xo * sw] }
                            }
                        }
                    }
                } } }
            }
        }
    }
}
