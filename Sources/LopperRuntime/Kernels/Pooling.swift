import LopperModel

/// MaxPool, AveragePool and the global pools over 1 to 3 spatial axes.
enum PoolingKernels {
    static let all: [KernelVersion] = [
        KernelVersion("MaxPool") { setup in
            try Pool(setup, max: true)
        },
        KernelVersion("AveragePool") { setup in
            try Pool(setup, max: false)
        },
        KernelVersion("GlobalAveragePool") { _ in GlobalPool(max: false) },
        KernelVersion("GlobalMaxPool") { _ in GlobalPool(max: true) },
    ]

    struct Pool: DestinationWriting {
        let window: WindowAttributes
        let kernel: [Int]
        let max: Bool
        let ceilMode: Bool
        let countIncludePad: Bool
        let columnMajorIndices: Bool
        let wantsIndices: Bool

        init(_ setup: KernelSetup, max: Bool) throws {
            let node = setup.node
            window = try WindowAttributes(node)
            guard let kernel = window.kernelShape else { throw ModelError("is required", field: "attribute 'kernel_shape'") }
            self.kernel = kernel
            self.max = max
            ceilMode = try node.int("ceil_mode", default: 0) != 0
            countIncludePad = try node.int("count_include_pad", default: 0) != 0
            columnMajorIndices = try node.int("storage_order", default: 0) != 0
            wantsIndices = max && node.outputs.count > 1 && !node.outputs[1].isEmpty
        }

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            var x = try inputs.required(0)
            let original = x.elementType
            if x.kind != .float { x = try Cast.convert(x, to: .float32) }
            guard (1...3).contains(x.rank - 2) else { throw ModelError("input X must have 1 to 3 spatial axes, found shape \(x.shape)") }
            let geometry = try Window(input: Array(x.shape[2...]), kernel: kernel, attributes: window, ceilMode: ceilMode)
            let g = geometry.as3D
            let padEnd = [Int](repeating: 0, count: 3 - geometry.spatial) + geometry.padEnd
            let (pe0, pe1, pe2) = (padEnd[0], padEnd[1], padEnd[2])
            let (kd, kh, kw) = (g.kernel[0], g.kernel[1], g.kernel[2])
            let (sd, sh, sw) = (g.strides[0], g.strides[1], g.strides[2])
            let (dd, dh, dw) = (g.dilations[0], g.dilations[1], g.dilations[2])
            let (pd, ph, pw) = (g.pads[0], g.pads[1], g.pads[2])
            let planes = x.shape[0] * x.shape[1]
            let out = try context.output(.float32, shape: Array(x.shape[0..<2]) + geometry.output)
            let indices = wantsIndices ? try Tensor(uninitialized: .int64, shape: out.shape) : nil
            let (D, H, W) = (g.input[0], g.input[1], g.input[2])
            let (od, oh, ow) = (g.output[0], g.output[1], g.output[2])
            let inSize = D * H * W, outSize = od * oh * ow
            let (src, dst, idx) = (x.f, out.f, indices?.i)
            let (max, includePad, columnMajor) = (self.max, countIncludePad, columnMajorIndices)
            if max && idx == nil && D == 1 && kd == 1 {
                // Plain 2-D max pooling, the window clipped to the input, no index bookkeeping: each
                // input row's maxima over the window's columns first, then those over its rows. Both
                // keep the later of equal values, as the window scanned row by row does, and skip NaN.
                context.parallel(planes, cost: planes * outSize * kh * kw) { range in
                    withUnsafeTemporaryAllocation(of: Float.self, capacity: H * ow) { buffer in
                        let rowMaxima = buffer.baseAddress!
                        for plane in range {
                            let input = src + plane * inSize, output = dst + plane * outSize
                            rowMaxima.update(repeating: -.infinity, count: H * ow)
                            for iy in 0..<H {
                                let line = input + iy * W, maxima = rowMaxima + iy * ow
                                for e in 0..<kw {
                                    // Output columns whose tap e lands inside the line.
                                    let shift = e * dw - pw
                                    let lo = Swift.min(ow, shift >= 0 ? 0 : (-shift + sw - 1) / sw)
                                    let hi = Swift.max(lo, Swift.min(ow, W - shift > 0 ? (W - 1 - shift) / sw + 1 : 0))
                                    for xo in lo..<hi {
                                        let v = line[xo &* sw &+ shift], r = maxima[xo]
                                        maxima[xo] = v >= r ? v : r
                                    }
                                }
                            }
                            for y in 0..<oh {
                                let row = output + y * ow
                                row.update(repeating: -.infinity, count: ow)
                                for b in 0..<kh {
                                    let iy = y * sh - ph + b * dh
                                    if iy < 0 || iy >= H { continue }
                                    let maxima = rowMaxima + iy * ow
                                    for xo in 0..<ow {
                                        let v = maxima[xo], r = row[xo]
                                        row[xo] = v >= r ? v : r
                                    }
                                }
                            }
                        }
                    }
                }
                let result = original.storageKind == .float ? out.retyped(original) : try Cast.convert(out, to: original)
                return [result]
            }
            context.parallel(planes, cost: planes * outSize * kd * kh * kw) { range in
                for plane in range {
                    let input = src + plane * inSize
                    var o = plane * outSize
                    for z in 0..<od { for y in 0..<oh { for xo in 0..<ow {
                        let start0 = z * sd - pd, start1 = y * sh - ph, start2 = xo * sw - pw
                        var best = -Float.infinity, bestIndex = 0, sum: Float = 0, valid = 0, padded = 0
                        for a in 0..<kd {
                            let iz = start0 + a * dd
                            let zInPad = iz < D + pe0
                            for b in 0..<kh {
                                let iy = start1 + b * dh
                                let yInPad = iy < H + pe1
                                for e in 0..<kw {
                                    let ix = start2 + e * dw
                                    if zInPad && yInPad && ix < W + pe2 { padded += 1 }
                                    guard iz >= 0, iz < D, iy >= 0, iy < H, ix >= 0, ix < W else { continue }
                                    let offset = (iz * H + iy) * W + ix
                                    let v = input[offset]
                                    valid += 1
                                    sum += v
                                    if valid == 1 || v > best {
                                        best = v
                                        if idx != nil { bestIndex = columnMajor ? iz + D * (iy + H * ix) : offset }
                                    }
                                }
                            }
                        }
                        if max {
                            dst[o] = best
                            idx?[o] = Int64(plane * inSize + bestIndex)
                        } else {
                            dst[o] = sum / Float(includePad ? padded : Swift.max(valid, 1))
                        }
                        o += 1
                    } } }
                }
            }
            let result = original.storageKind == .float ? out.retyped(original) : try Cast.convert(out, to: original)
            return indices.map { [result, $0] } ?? [result]
        }
    }

    /// Sum with eight partial sums, which the compiler may keep in vector registers.
    static func sum(_ p: UnsafePointer<Float>, _ n: Int) -> Float {
        var s0: Float = 0, s1: Float = 0, s2: Float = 0, s3: Float = 0, s4: Float = 0, s5: Float = 0, s6: Float = 0, s7: Float = 0
        var k = 0
        while k + 8 <= n {
            s0 += p[k]; s1 += p[k + 1]; s2 += p[k + 2]; s3 += p[k + 3]
            s4 += p[k + 4]; s5 += p[k + 5]; s6 += p[k + 6]; s7 += p[k + 7]
            k += 8
        }
        while k < n { s0 += p[k]; k += 1 }
        return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
    }

    struct GlobalPool: Kernel {
        let max: Bool

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let x = try inputs.required(0)
            try x.requireFloat("X")
            guard x.rank >= 2 else { throw ModelError("input X must have rank 2 or more, found \(x.shape)") }
            let planes = x.shape[0] * x.shape[1], size = x.shape[2...].reduce(1, *)
            let out = try Tensor(uninitialized: x.elementType, shape: Array(x.shape[0..<2]) + [Int](repeating: 1, count: x.rank - 2))
            let (src, dst, max) = (x.f, out.f, self.max)
            context.parallel(planes, cost: planes * size) { range in
                for plane in range {
                    let p = src + plane * size
                    if max {
                        var best = -Float.infinity
                        for k in 0..<size { best = Swift.max(best, p[k]) }
                        dst[plane] = best
                    } else {
                        dst[plane] = PoolingKernels.sum(p, size) / Float(size)
                    }
                }
            }
            return [out]
        }
    }
}
