import CKernels

/// A Conv's weights in the blocks `lopper_conv_taps` reads, packed once at load: per group,
/// blocks of `rows` filters, tap-major, the filters past a group's last read as zero.
final class PackedConvWeights: @unchecked Sendable {
    /// Filters per block on this CPU.
    static let rows = lopper_conv_block_rows()

    private let source: Tensor
    private let storage: UnsafeMutablePointer<Float>
    let taps: Int
    let blocksPerGroup: Int

    /// `nil` when `weights` is not a float tensor that `group` divides; the Conv reports that.
    init?(_ weights: Tensor, group: Int) {
        guard weights.kind == .float, weights.rank >= 3, group >= 1, weights.shape[0] % group == 0 else { return nil }
        let rows = Self.rows
        let filters = weights.shape[0] / group
        source = weights
        taps = weights.count / Swift.max(weights.shape[0], 1)
        blocksPerGroup = (filters + rows - 1) / rows
        let count = group * blocksPerGroup * rows * taps
        storage = .allocate(capacity: Swift.max(count, 1))
        storage.initialize(repeating: 0, count: count)
        let w = weights.f
        for g in 0..<group {
            for filter in 0..<filters {
                let block = first(ofGroup: g) + (filter / rows) * rows * taps + filter % rows
                let row = w + (g * filters + filter) * taps
                for t in 0..<taps { block[t * rows] = row[t] }
            }
        }
    }

    deinit { storage.deallocate() }

    /// Whether these are `weights` packed (the same memory, so the same values: buffers are
    /// never changed once written).
    func packs(_ weights: Tensor) -> Bool {
        weights.buffer === source.buffer && weights.byteOffset == source.byteOffset && weights.shape == source.shape
    }

    func first(ofGroup g: Int) -> UnsafeMutablePointer<Float> { storage + g * blocksPerGroup * Self.rows * taps }
}

/// Conv on one or two spatial axes as a sum over taps (input channel × kernel offset), each tap
/// one shifted run of the input: a 1×1 convolution reads its input where it is; any other reads a
/// zero-padded copy of it split into stride phases (element (y·s + a, x·s + b) of the padded
/// input in phase (a, b)), where every tap of every output row is a contiguous run too. Output
/// positions are computed on the copy's row width and the kernel drops the extra columns as it
/// stores, with the bias and fused activation (when the C kernels have it) applied. No im2col, no
/// packing per run, and each output element is summed in tap order whatever the thread split.
public struct TapConvolution {
    /// The instruction set the tap kernel runs on this CPU ("avx512f", "avx2+fma", "portable"):
    /// the first two give the same bits (one fused multiply-add per tap), the portable one not.
    public static var instructionSet: String { String(cString: lopper_conv_isa()) }

    typealias Geometry = (input: [Int], kernel: [Int], strides: [Int], dilations: [Int], pads: [Int], output: [Int])

    /// Output positions per work item: its tile of the input (taps × positions) stays near L2.
    static let positionsPerItem = 2048

    static func applies(to g: Geometry) -> Bool { g.input[0] == 1 && g.kernel[0] == 1 }

    /// From this many input channels per group, a 1×1 Conv read in place runs as OpenBLAS SGEMM:
    /// its packed panels beat the tap kernel there by 15–40% (`Docs/bench/conv_taps_vs_sgemm.c`).
    static let sgemmChannels = 192
    /// The SGEMM blocks of a 1×1 Conv: fixed, so every call and its bits are the same whatever
    /// the thread count.
    static let sgemmFilters = 64

    /// A 1×1 Conv read in place with many channels, as SGEMM calls on fixed blocks (filters ×
    /// positions) followed by the bias and activation on each block.
    static func pointwiseSGEMM(_ x: Tensor, _ w: Tensor, _ out: Tensor, group: Int, bias: UnsafePointer<Float>?,
                               activation: Activation?, _ context: ExecutionContext) {
        let (batch, channels, filters) = (x.shape[0], x.shape[1], out.shape[1])
        let cinG = channels / group, coutG = filters / group, size = out.count / Swift.max(batch * filters, 1)
        let filterBlocks = (coutG + sgemmFilters - 1) / sgemmFilters, columnBlocks = (size + positionsPerItem - 1) / positionsPerItem
        let (src, weights, dst) = (x.f, w.f, out.f)
        context.parallel(batch * group * filterBlocks * columnBlocks, cost: batch * filters * size * cinG, chunksPerThread: 8) { items in
            for item in items {
                let columnBlock = item % columnBlocks, filterBlock = (item / columnBlocks) % filterBlocks
                let gi = (item / (columnBlocks * filterBlocks)) % group, n = item / (columnBlocks * filterBlocks * group)
                let firstFilter = gi * coutG + filterBlock * sgemmFilters, filterCount = Swift.min(sgemmFilters, coutG - filterBlock * sgemmFilters)
                let first = columnBlock * positionsPerItem, columns = Swift.min(positionsPerItem, size - first)
                let result = dst + (n * filters + firstFilter) * size + first
                MatMulKernels.sgemm(transA: false, transB: false, m: filterCount, n: columns, k: cinG,
                                    a: weights + firstFilter * cinG, lda: cinG, b: src + (n * channels + gi * cinG) * size + first, ldb: size,
                                    beta: 0, c: result, ldc: size)
                ConvKernels.epilogue(result, rows: filterCount, columns: columns, stride: size,
                                     bias: bias.map { $0 + firstFilter }, activation: activation)
            }
        }
    }

    static func run(_ x: Tensor, _ weights: PackedConvWeights, _ out: Tensor, _ g: Geometry, group: Int,
                    bias: UnsafePointer<Float>?, activation: Activation?, _ context: ExecutionContext) {
        let (batch, channels, filters) = (x.shape[0], x.shape[1], out.shape[1])
        let (H, W, kh, kw) = (g.input[1], g.input[2], g.kernel[1], g.kernel[2])
        let (sh, sw, dh, dw) = (g.strides[1], g.strides[2], g.dilations[1], g.dilations[2])
        let (oh, ow) = (g.output[1], g.output[2])
        let cinG = channels / group, coutG = filters / group, taps = weights.taps
        let inSize = H * W, outSize = oh * ow
        let inPlace = kh == 1 && kw == 1 && sh == 1 && sw == 1 && g.pads[1] == 0 && g.pads[2] == 0 && inSize == outSize
        let phases = inPlace ? 1 : sh * sw
        let phaseHeight = inPlace ? H : oh + (kh - 1) * dh / sh
        let phaseWidth = inPlace ? W : ow + (kw - 1) * dw / sw
        let phasePlane = phaseHeight * phaseWidth
        var offsets = [Int](repeating: 0, count: taps)
        for c in 0..<cinG { for ky in 0..<kh { for kx in 0..<kw {
            let phase = (ky * dh % sh) * sw + kx * dw % sw
            offsets[(c * kh + ky) * kw + kx] = ((c * phases + phase) * phaseHeight + ky * dh / sh) * phaseWidth + kx * dw / sw
        } } }
        let rowsPerItem = Swift.max(1, Swift.min(oh, positionsPerItem / phaseWidth))
        let rowBlocks = (oh + rowsPerItem - 1) / rowsPerItem
        let rows = PackedConvWeights.rows, filterBlocks = weights.blocksPerGroup
        // Images per pass: as many as keep the padded copies near 16 MiB (all, for a 1×1 read in place).
        let phasedImage = channels * phases * phasePlane
        let imagesPerPass = Swift.max(1, inPlace ? batch : Swift.min(batch, (4 << 20) / Swift.max(phasedImage, 1)))
        // Bias and the activation are applied as the kernel stores; an activation it does not
        // have runs over the stored rows after it.
        let stored = activation?.pointwise ?? LOPPER_POINTWISE_IDENTITY
        let after = activation?.pointwise == nil ? activation : nil
        for firstImage in stride(from: 0, to: batch, by: imagesPerPass) {
            let images = Swift.min(imagesPerPass, batch - firstImage)
            let phased = inPlace ? nil : Tensor(allocating: .float32, shape: [images * phasedImage])
            if let phased {
                let planes = images * channels
                context.parallel(planes, cost: planes * phases * phasePlane) { range in
                    for plane in range {
                        lopper_conv_split(x.f + (firstImage * channels + plane) * inSize, H, W, sh, sw, g.pads[1], g.pads[2],
                                          phaseHeight, phaseWidth, phased.f + plane * phases * phasePlane)
                    }
                }
            }
            let source = UnsafePointer(phased?.f ?? x.f + firstImage * channels * inSize)
            let imageStride = inPlace ? channels * inSize : phasedImage
            let groupStride = inPlace ? cinG * inSize : cinG * phases * phasePlane
            // Small images give fewer items than threads: then each item's filter blocks are split too.
            let units = images * group * rowBlocks
            let filterParts = units < context.threads ? Swift.min(context.threads, filterBlocks) : 1
            offsets.withUnsafeBufferPointer { offsets in
                // Items differ (the last row block is short): threads take them one by one.
                context.parallel(units * filterParts, cost: images * filters * outSize * taps, chunksPerThread: 8) { items in
                    for item in items {
                        let part = item % filterParts, unit = item / filterParts
                        let rowBlock = unit % rowBlocks, gi = (unit / rowBlocks) % group, n = unit / (rowBlocks * group)
                        let firstBlock = filterBlocks * part / filterParts, endBlock = filterBlocks * (part + 1) / filterParts
                        let firstFilter = firstBlock * rows, filterCount = Swift.min(coutG, endBlock * rows) - firstFilter
                        if filterCount <= 0 { continue }
                        let y0 = rowBlock * rowsPerItem, y1 = Swift.min(oh, y0 + rowsPerItem)
                        let count = (y1 - y0 - 1) * phaseWidth + ow
                        let result = out.f + ((firstImage + n) * filters + gi * coutG + firstFilter) * outSize + y0 * ow
                        var output = lopper_conv_output(out: result, out_stride: outSize, row_width: phaseWidth, out_width: ow,
                                                        bias: bias.map { $0 + gi * coutG + firstFilter }, function: stored)
                        lopper_conv_taps(source + n * imageStride + gi * groupStride + y0 * phaseWidth, offsets.baseAddress, taps,
                                         weights.first(ofGroup: gi) + firstBlock * rows * taps, filterCount, count, &output)
                        ConvKernels.epilogue(result, rows: filterCount, columns: (y1 - y0) * ow, stride: outSize,
                                             bias: nil, activation: after)
                    }
                }
            }
        }
    }
}
