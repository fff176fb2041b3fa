import LopperModel

/// Convolution (1-D to 3-D): depthwise by a direct kernel, 1×1 with many input channels by
/// OpenBLAS SGEMM on the input in place, other 1-D and 2-D by the tap kernel (`TapConvolution`),
/// 3-D by im2col and OpenBLAS GEMM.
enum ConvKernels {
    static let all: [KernelVersion] = [
        KernelVersion("Conv") { setup in
            let group = try setup.node.int("group", default: 1)
            return Conv(window: try WindowAttributes(setup.node), group: group, activation: nil,
                        packed: setup.constant(1).flatMap { PackedConvWeights($0, group: group) })
        },
        KernelVersion("ConvTranspose") { setup in
            let node = setup.node
            return ConvTranspose(window: try WindowAttributes(node), group: try node.int("group", default: 1),
                                 outputPadding: try node.ints("output_padding"), outputShape: try node.ints("output_shape"),
                                 activation: nil)
        },
    ]

    /// Bias and activation over a block of `rows` channels × `columns` positions, rows `stride` apart.
    static func epilogue(_ out: UnsafeMutablePointer<Float>, rows: Int, columns: Int, stride: Int,
                         bias: UnsafePointer<Float>?, activation: Activation?) {
        if bias == nil && activation == nil { return }
        for r in 0..<rows {
            let p = out + r * stride
            if let bias {
                let v = bias[r]
                if v != 0 { for k in 0..<columns { p[k] += v } }
            }
            activation?.apply(p, columns)
        }
    }

    /// Adds a per-channel bias and applies the fused activation over `planes` planes of `size`
    /// floats, plane `p` belonging to channel `p % channels`.
    static func finish(_ out: UnsafeMutablePointer<Float>, planes: Int, size: Int, channels: Int,
                       bias: UnsafePointer<Float>?, activation: Activation?, _ context: ExecutionContext) {
        if bias == nil && activation == nil { return }
        context.parallel(planes, cost: planes * size) { range in
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

struct Conv: ActivationFusing, DestinationWriting {
    let window: WindowAttributes
    let group: Int
    let activation: Activation?
    /// The weights packed at load when they are a constant.
    let packed: PackedConvWeights?

    func fusing(_ activation: Activation) -> Kernel { Conv(window: window, group: group, activation: activation, packed: packed) }

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
        let out = try context.output(.float32, shape: [batch, filters] + geometry.output)
        let g = geometry.as3D
        let inSize = g.input.reduce(1, *), outSize = g.output.reduce(1, *)

        if group == channels && filters == channels && group > 1 {
            depthwise(x.f, w.f, out.f, planes: batch * channels, channels: channels, g, context)
            ConvKernels.finish(out.f, planes: batch * filters, size: outSize, channels: filters,
                               bias: bias?.f, activation: activation, context)
            return [out]
        }
        let pointwise = kernel.allSatisfy { $0 == 1 } && g.strides == [1, 1, 1] && g.pads == [0, 0, 0] && inSize == outSize
        if pointwise && channels / group >= TapConvolution.sgemmChannels {
            TapConvolution.pointwiseSGEMM(x, w, out, group: group, bias: bias?.f, activation: activation, context)
            return [out]
        }
        if TapConvolution.applies(to: g),
           let weights = packed.flatMap({ $0.packs(w) ? $0 : nil }) ?? PackedConvWeights(w, group: group) {
            TapConvolution.run(x, weights, out, g, group: group, bias: bias?.f, activation: activation, context)
            return [out]
        }
        let cinG = channels / group, coutG = filters / group
        let rows = cinG * kernel.reduce(1, *)
        let lines = g.output[0] * g.output[1], lineLength = g.output[2]
        // Output lines per tile, so that a tile's unfolded input stays in cache (about 1 MiB).
        let perTile = Swift.max(1, (1 << 18) / Swift.max(rows * lineLength, 1))
        let tiles = (lines + perTile - 1) / perTile
        let (src, weights, dst, biasValues, activation) = (x.f, w.f, out.f, bias?.f, self.activation)
        // Work items: (image, group, block of output columns), spread over the threads. A pointwise
        // convolution multiplies the input in place; others unfold one tile of lines at a time.
        let blocks = pointwise ? Swift.max(1, Swift.min(context.threads * 2, outSize / 2048)) : tiles
        // Small images give fewer items than threads: then each item's filters are split too
        // (never with one thread, so single-threaded results do not change).
        let units = batch * group * blocks
        let filterParts = units < context.threads ? Swift.min(context.threads, Swift.max(1, coutG / 16)) : 1
        context.parallel(units * filterParts, cost: batch * filters * outSize * rows) { items in
            let col = pointwise ? nil : UnsafeMutablePointer<Float>.allocate(capacity: rows * perTile * lineLength)
            defer { col?.deallocate() }
            for item in items {
                let part = item % filterParts, unit = item / filterParts
                let block = unit % blocks, gi = (unit / blocks) % group, n = unit / (blocks * group)
                let firstFilter = gi * coutG + coutG * part / filterParts
                let filterCount = gi * coutG + coutG * (part + 1) / filterParts - firstFilter
                let input = src + (n * channels + gi * cinG) * inSize
                let filter = weights + firstFilter * rows
                let result = dst + (n * filters + firstFilter) * outSize
                let channelBias = biasValues.map { $0 + firstFilter }
                let first: Int, columns: Int, source: UnsafePointer<Float>, ldb: Int
                if let col {
                    let lineRange = (block * perTile)..<Swift.min(lines, (block + 1) * perTile)
                    im2col(input, channels: cinG, g, lines: lineRange, col)
                    (first, columns, source, ldb) = (lineRange.lowerBound * lineLength, lineRange.count * lineLength, UnsafePointer(col), lineRange.count * lineLength)
                } else {
                    first = outSize * block / blocks
                    columns = outSize * (block + 1) / blocks - first
                    (source, ldb) = (UnsafePointer(input + first), outSize)
                }
                MatMulKernels.sgemm(transA: false, transB: false, m: filterCount, n: columns, k: rows,
                                    a: filter, lda: rows, b: source, ldb: ldb, beta: 0, c: result + first, ldc: outSize)
                ConvKernels.epilogue(result + first, rows: filterCount, columns: columns, stride: outSize,
                                     bias: channelBias, activation: activation)
            }
        }
        return [out]
    }

    /// Unfolds the windows of `channels` input planes for the output lines `lines` into `col`:
    /// one row per (channel, kernel offset), one column per output position; padding reads as zero.
    private func im2col(_ src: UnsafePointer<Float>, channels: Int, _ g: (input: [Int], kernel: [Int], strides: [Int], dilations: [Int], pads: [Int], output: [Int]),
                        lines: Range<Int>, _ col: UnsafeMutablePointer<Float>) {
        let (D, H, W) = (g.input[0], g.input[1], g.input[2])
        let (kd, kh, kw) = (g.kernel[0], g.kernel[1], g.kernel[2])
        let (oh, ow) = (g.output[1], g.output[2])
        let (sd, sh, sw) = (g.strides[0], g.strides[1], g.strides[2])
        let (dd, dh, dw) = (g.dilations[0], g.dilations[1], g.dilations[2])
        let (pd, ph, pw) = (g.pads[0], g.pads[1], g.pads[2])
        let columns = lines.count * ow
        for row in 0..<(channels * kd * kh * kw) {
            let e = row % kw, b = (row / kw) % kh, a = (row / (kw * kh)) % kd, c = row / (kw * kh * kd)
            var dst = col + row * columns
            let x0 = e * dw - pw
            // Output columns whose input column is inside the image.
            let lo = Swift.min(ow, x0 >= 0 ? 0 : (-x0 + sw - 1) / sw)
            let hi = Swift.max(lo, Swift.min(ow, W - x0 > 0 ? (W - 1 - x0) / sw + 1 : 0))
            for line in lines {
                let z = line / oh, y = line % oh
                let iz = z * sd - pd + a * dd, iy = y * sh - ph + b * dh
                if iz < 0 || iz >= D || iy < 0 || iy >= H {
                    dst.update(repeating: 0, count: ow)
                } else {
                    let source = src + ((c * D + iz) * H + iy) * W + x0
                    for xo in 0..<lo { dst[xo] = 0 }
                    if sw == 1 {
                        (dst + lo).update(from: source + lo, count: hi - lo)
                    } else {
                        for xo in lo..<hi { dst[xo] = source[xo * sw] }
                    }
                    for xo in hi..<ow { dst[xo] = 0 }
                }
                dst += ow
            }
        }
    }

    /// Adds one kernel row's taps to output columns `columns`, all of whose taps are inside
    /// the input line (`line` already shifted by the left padding).
    @inline(__always)
    private func depthwiseRow(_ row: UnsafeMutablePointer<Float>, _ line: UnsafePointer<Float>, _ w: UnsafePointer<Float>,
                              _ columns: Range<Int>, kw: Int, sw: Int, dw: Int) {
        // Wrapping index arithmetic: no overflow checks, so the loops vectorise.
        if sw == 1 && dw == 1 && kw == 3 {
            let (w0, w1, w2) = (w[0], w[1], w[2])
            for xo in columns { row[xo] += w0 * line[xo] + w1 * line[xo &+ 1] + w2 * line[xo &+ 2] }
        } else if sw == 1 && dw == 1 && kw == 5 {
            let (w0, w1, w2, w3, w4) = (w[0], w[1], w[2], w[3], w[4])
            for xo in columns {
                row[xo] += w0 * line[xo] + w1 * line[xo &+ 1] + w2 * line[xo &+ 2] + w3 * line[xo &+ 3] + w4 * line[xo &+ 4]
            }
        } else if sw == 2 && dw == 1 && kw == 3 {
            let (w0, w1, w2) = (w[0], w[1], w[2])
            for xo in columns { let p = line + (xo &* 2); row[xo] += w0 * p[0] + w1 * p[1] + w2 * p[2] }
        } else {
            for xo in columns {
                let p = line + xo * sw
                var acc = row[xo]
                for e in 0..<kw { acc += w[e] * p[e * dw] }
                row[xo] = acc
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
        // Output columns where every tap of a kernel row lands inside the input.
        let innerLo = Swift.min(ow, (pw + sw - 1) / sw)
        let innerHi = Swift.max(innerLo, Swift.min(ow, W - 1 - (kw - 1) * dw + pw >= 0 ? (W - 1 - (kw - 1) * dw + pw) / sw + 1 : 0))
        context.parallel(planes, cost: planes * outSize * taps) { range in
            for plane in range {
                let src = x + plane * inSize, dst = out + plane * outSize
                let filter = w + (plane % channels) * taps
                dst.update(repeating: 0, count: outSize)
                for a in 0..<kd { for b in 0..<kh {
                    let weights = filter + (a * kh + b) * kw
                    for z in 0..<od {
                        let iz = z * sd - pd + a * dd
                        if iz < 0 || iz >= D { continue }
                        for y in 0..<oh {
                            let iy = y * sh - ph + b * dh
                            if iy < 0 || iy >= H { continue }
                            let line = src + (iz * H + iy) * W
                            let row = dst + (z * oh + y) * ow
                            // Edges: taps checked one by one.
                            @inline(__always) func edge(_ xo: Int) {
                                var acc = row[xo]
                                for e in 0..<kw {
                                    let ix = xo * sw - pw + e * dw
                                    if ix >= 0 && ix < W { acc += weights[e] * line[ix] }
                                }
                                row[xo] = acc
                            }
                            for xo in 0..<innerLo { edge(xo) }
                            for xo in innerHi..<ow { edge(xo) }
                            depthwiseRow(row, line - pw, weights, innerLo..<innerHi, kw: kw, sw: sw, dw: dw)
                        }
                    }
                } }
            }
        }
    }
}
