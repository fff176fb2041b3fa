import Foundation
import LopperModel

/// Measured step latencies keyed by layer signature, from `lopper measure` on the device or
/// from another tool (TensorRT's `trtexec`, TFLite's benchmark tool) written in the same CSV:
///
///     signature,milliseconds,op_class,ops,bytes
///     Conv+Relu|fp32|group=1 kernel_shape=3x3 pads=1x1x1x1 strides=1x1|1x16x80x80 32x16x3x3 32 -> 1x32x80x80,0.412,conv,1.9e8,1.3e6
///
/// `op_class`, `ops` and `bytes` are optional. A step whose signature is in the table takes the
/// measured time. Another step of a layer measured at two or more other channel counts takes
/// the least-squares line of latency in ops through them; otherwise the roofline time scaled by
/// the measured-to-roofline ratio of the entry closest in size among the same layer, or else
/// among its family (kind, dtype and attributes); anything else keeps the roofline. (Size-based
/// answers need the table's `ops` and `bytes`.) Of the same layer, the entries sharing the most
/// of the step's sizes that pruning changes answer (another layer of the same kind and spatial
/// size blanks alike); with a channel alignment above 1, only those whose channel counts are on
/// and off the multiple in the same places, when there are any: a runtime may run other kernels
/// for them (ONNX Runtime's blocked NCHWc convolutions take only filter counts that are
/// multiples of their block), so they need not lie on one line.
public struct LatencyTable: Sendable {
    public struct Entry: Sendable, Equatable {
        public var signature: String
        public var seconds: Double
        public var opClass: OpClass?
        public var ops: Double?
        public var bytes: Double?

        public init(signature: String, seconds: Double, opClass: OpClass? = nil, ops: Double? = nil, bytes: Double? = nil) {
            self.signature = signature
            self.seconds = seconds
            self.opClass = opClass
            self.ops = ops
            self.bytes = bytes
        }

        /// Kind, dtype and attributes: the signature without its shapes.
        var family: String { LatencyTable.family(of: signature) }
        /// The same layer at any channel counts: the signature with its channel sizes blanked.
        var layer: String { LatencyTable.layer(of: signature) }
    }

    public private(set) var entries: [String: Entry] = [:]
    private var families: [String: [Entry]] = [:]
    private var layers: [String: [Entry]] = [:]
    /// Each entry's `blankedSizes`, parsed once.
    private var sizes: [String: [Int]] = [:]

    public init(_ entries: [Entry] = []) {
        for entry in entries { insert(entry) }
    }

    public mutating func insert(_ entry: Entry) {
        entries[entry.signature] = entry
        sizes[entry.signature] = Self.blankedSizes(of: entry.signature)
        families[entry.family, default: []].removeAll { $0.signature == entry.signature }
        layers[entry.layer, default: []].removeAll { $0.signature == entry.signature }
        if entry.ops != nil, entry.bytes != nil {
            families[entry.family, default: []].append(entry)
            layers[entry.layer, default: []].append(entry)
        }
    }

    static func family(of signature: String) -> String {
        let general = widthFree(signature)
        return general.range(of: "|", options: .backwards).map { String(general[..<$0.lowerBound]) } ?? general
    }

    /// The signature with a depthwise Conv's `group` (its channel count, which pruning changes)
    /// blanked; a depthwise Conv's weight has one input channel per group.
    static func widthFree(_ signature: String) -> String {
        guard let key = signature.range(of: " group=") ?? signature.range(of: "|group="),
              let bar = signature.range(of: "|", options: .backwards) else { return signature }
        let value = signature[key.upperBound...].prefix { $0.isNumber }
        let inputs = signature[bar.upperBound...].split(separator: " ")
        guard value != "1", inputs.count >= 2, inputs[1].split(separator: "x").dropFirst().first == "1" else { return signature }
        return signature.replacingCharacters(in: key.upperBound..<value.endIndex, with: "*")
    }

    /// The signature with the sizes pruning changes blanked: the first two dimensions of every
    /// shape of rank 3 or more (batch and channels of an activation, filters and inputs of a
    /// weight), every dimension of lower-rank shapes (biases, matrices), and a depthwise group.
    static func layer(of signature: String) -> String {
        let signature = widthFree(signature)
        guard let bar = signature.range(of: "|", options: .backwards) else { return signature }
        let shapes = signature[bar.upperBound...].split(separator: " ").map { token -> String in
            guard token != "->" else { return "->" }
            let dims = token.split(separator: "x")
            return dims.count >= 3 ? (["*", "*"] + dims.dropFirst(2).map(String.init)).joined(separator: "x")
                : dims.map { _ in "*" }.joined(separator: "x")
        }
        return signature[..<bar.upperBound] + shapes.joined(separator: " ")
    }

    /// The sizes `layer(of:)` blanks, in order.
    static func blankedSizes(of signature: String) -> [Int] {
        guard let bar = signature.range(of: "|", options: .backwards) else { return [] }
        return signature[bar.upperBound...].split(separator: " ").flatMap { token -> [Int] in
            guard token != "->" else { return [] }
            let dims = token.split(separator: "x").map { Int($0) ?? 0 }
            return dims.count >= 3 ? Array(dims.prefix(2)) : dims
        }
    }

    /// Whether each of `sizes` is a multiple of `alignment` (nothing to tell apart for an
    /// alignment of 1).
    static func alignmentClass(_ sizes: [Int], alignment: Int) -> [Bool] {
        alignment > 1 ? sizes.map { $0 % alignment == 0 } : []
    }

    /// The entries that share the most of the step's blanked `sizes`: the same layer at other
    /// widths rather than another layer of the same kind and spatial size (a 1×1 Conv to 104
    /// filters and one to 88 over the same positions blank alike).
    func mostAlike(_ entries: [Entry], sizes: [Int]) -> [Entry] {
        let shared = entries.map { entry in zip(self.sizes[entry.signature] ?? [], sizes).filter { $0 == $1 }.count }
        guard let most = shared.max() else { return [] }
        return zip(entries, shared).filter { $0.1 == most }.map(\.0)
    }

    /// The measured (`exact`) or family-scaled latency of a step, or nil to keep the roofline.
    func latency(signature: String, ops: Double, bytes: Double, alignment: Int = 1,
                 roofline: (Double, Double) -> Double) -> (value: Double, exact: Bool)? {
        if let entry = entries[signature] { return (entry.seconds, true) }
        let sameLayer = layers[Self.layer(of: signature)] ?? []
        let stepSizes = Self.blankedSizes(of: signature)
        let alignmentClass = Self.alignmentClass(stepSizes, alignment: alignment)
        let sameClass = alignment > 1
            ? sameLayer.filter { Self.alignmentClass(sizes[$0.signature] ?? [], alignment: alignment) == alignmentClass } : sameLayer
        let candidates = mostAlike(sameClass.isEmpty ? sameLayer : sameClass, sizes: stepSizes)
        // The same layer measured at two or more other channel counts: a straight line in ops.
        if let line = Self.fit(candidates) { return (max(0, line.intercept + line.slope * ops), false) }
        guard let members = candidates.isEmpty ? families[Self.family(of: signature)] : candidates, !members.isEmpty else { return nil }
        let size = max(ops, 1)
        let nearest = members.min { a, b in
            let da = abs(log(max(a.ops!, 1) / size)), db = abs(log(max(b.ops!, 1) / size))
            return da != db ? da < db : a.signature < b.signature
        }!
        let reference = roofline(nearest.ops!, nearest.bytes!)
        guard reference > 0 else { return nil }
        return (roofline(ops, bytes) * nearest.seconds / reference, false)
    }

    /// Least squares `seconds = intercept + slope · ops` over entries with distinct ops; nil
    /// for fewer than two, or a line that is not increasing.
    static func fit(_ entries: [Entry]) -> (intercept: Double, slope: Double)? {
        let points = entries.compactMap { entry in entry.ops.map { ($0, entry.seconds) } }
        guard Set(points.map(\.0)).count >= 2 else { return nil }
        let n = Double(points.count)
        let mx = points.reduce(0) { $0 + $1.0 } / n, my = points.reduce(0) { $0 + $1.1 } / n
        let sxx = points.reduce(0) { $0 + ($1.0 - mx) * ($1.0 - mx) }
        let sxy = points.reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) }
        let slope = sxy / sxx
        guard slope > 0, slope.isFinite else { return nil }
        return (my - slope * mx, slope)
    }

    // MARK: Signatures

    /// `kind|dtype|attributes|input shapes -> output shapes`, shapes as planned.
    static func signature(_ step: CostGraph.Step, shapes: PlannedShapes, dtype: DeploymentType) -> String {
        let graph = shapes.graph
        let main = graph.nodes[step.nodes[0]]
        func text(_ name: String) -> String {
            guard let v = graph.index[name] else { return "?" }
            let rank = graph.values[v].shape.count
            return rank == 0 ? "s" : (0..<rank).map { String(shapes.dim(v, $0)) }.joined(separator: "x")
        }
        let inputs = main.inputs.map { $0.isEmpty ? "-" : text($0) }.joined(separator: " ")
        let outputs = step.outputs.map { text(graph.values[$0].name) }.joined(separator: " ")
        return "\(step.kind)|\(dtype.rawValue)|\(step.attributes)|\(inputs) -> \(outputs)"
    }

    // MARK: CSV

    public static let header = "signature,milliseconds,op_class,ops,bytes"

    public static func load(path: String) throws -> LatencyTable {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ModelError("cannot read latency table: \(error.localizedDescription)", file: path)
        }
        var table = LatencyTable()
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard let first = lines.first, first.hasPrefix("signature,milliseconds") else {
            throw ModelError("line 1: expected the header '\(header)' (op_class, ops and bytes optional)", file: path)
        }
        for (number, line) in lines.enumerated().dropFirst() where !line.isEmpty && !line.hasPrefix("#") {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            func fail(_ message: String) -> ModelError { ModelError("line \(number + 1): \(message)", file: path) }
            guard fields.count >= 2, fields.count <= 5 else { throw fail("expected 2 to 5 comma-separated fields, found \(fields.count)") }
            guard let ms = Double(fields[1]), ms.isFinite, ms >= 0 else { throw fail("milliseconds '\(fields[1])' is not a non-negative number") }
            var entry = Entry(signature: fields[0], seconds: ms / 1000)
            if fields.count > 2, !fields[2].isEmpty {
                guard let opClass = OpClass(rawValue: fields[2]) else {
                    throw fail("op_class '\(fields[2])' is not one of \(OpClass.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                entry.opClass = opClass
            }
            if fields.count > 4, !fields[3].isEmpty || !fields[4].isEmpty {
                guard let ops = Double(fields[3]), let bytes = Double(fields[4]), ops >= 0, bytes >= 0 else {
                    throw fail("ops '\(fields[3])' and bytes '\(fields[4])' must be non-negative numbers")
                }
                entry.ops = ops
                entry.bytes = bytes
            }
            table.insert(entry)
        }
        return table
    }

    public func csv() -> String {
        var lines = [Self.header]
        for entry in entries.values.sorted(by: { $0.signature < $1.signature }) {
            let ms = String(format: "%.6g", entry.seconds * 1000)
            let ops = entry.ops.map { String(format: "%.6g", $0) } ?? ""
            let bytes = entry.bytes.map { String(format: "%.6g", $0) } ?? ""
            lines.append("\(entry.signature),\(ms),\(entry.opClass?.rawValue ?? ""),\(ops),\(bytes)")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
