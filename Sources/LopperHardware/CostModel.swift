import Foundation
import Synchronization
import LopperModel
import LopperPruning

/// What one step costs on a profile.
public struct StepCost: Codable, Sendable, Equatable {
    public var name: String
    public var kind: String
    public var opClass: OpClass
    public var macs: Int
    /// MACs that multiply a non-zero weight (equal to `macs` without weight sparsity).
    public var nonZeroMACs: Int
    public var paramBytes: Int
    /// Arithmetic operations as the roofline counts them (2 per padded MAC).
    public var ops: Double
    /// Bytes the step reads and writes (activations and weights).
    public var bytesMoved: Int
    public var computeSeconds: Double
    public var memorySeconds: Double
    public var latencySeconds: Double
    /// Where the latency came from: a measured latency table or the roofline.
    public var measured: Bool
    public var signature: String
}

/// A model's cost on a profile: per step and in total.
public struct CostReport: Codable, Sendable, Equatable {
    public struct Totals: Codable, Sendable, Equatable {
        public var macs: Int
        public var nonZeroMACs: Int
        /// Weights in the deployment number format (sparse layers stored compressed where the
        /// profile accelerates their pattern).
        public var paramBytes: Int
        /// The most activation bytes alive at once, in execution order.
        public var peakActivationBytes: Int
        public var latencySeconds: Double
    }

    public var profile: String
    public var dtype: DeploymentType
    public var steps: [StepCost]
    public var totals: Totals
}

/// Prices a model, or a pruning plan of it, on a hardware profile.
///
/// Per step: compute time is the step's operations over the profile's peak times the efficiency
/// of its operator class, with channel counts padded to the alignment and the sparsity speed-up
/// where the profile accelerates the layer's pattern; memory time is the bytes it moves over the
/// bandwidth (on-chip when its working set fits). A step takes the larger of the two plus the
/// launch overhead; a reshape-like step is free. A measured latency table, when given, answers
/// for the steps whose signature it has (see `LatencyTable`).
public struct CostModel: Sendable {
    public let graph: CostGraph
    public let profile: HardwareProfile
    public let table: LatencyTable?
    /// The table's answers for steps it has no entry for, by signature, ops and bytes: working
    /// one out compares the step with its layer's entries, and an allocator prices the same
    /// steps in plan after plan.
    private let tableAnswers = TableAnswers()

    private final class TableAnswers: Sendable {
        let known = Mutex<[String: (value: Double, exact: Bool)?]>([:])
    }

    public init(graph: CostGraph, profile: HardwareProfile, table: LatencyTable? = nil) {
        self.graph = graph
        self.profile = profile
        self.table = table
    }

    /// The totals of a plan; what the allocator calls many times.
    public func totals(_ plan: PruningPlan = .dense) -> CostReport.Totals { evaluate(plan, detailed: false).totals }

    /// The cost of a plan (the dense model by default), step by step.
    public func report(_ plan: PruningPlan = .dense) -> CostReport { evaluate(plan, detailed: true) }

    func evaluate(_ plan: PruningPlan, detailed: Bool) -> CostReport {
        let shapes = PlannedShapes(graph: graph, plan: plan)
        let sparsity = Dictionary(plan.layers.map { ($0.node, $0) }, uniquingKeysWith: { a, _ in a })
        var rows: [StepCost] = []
        if detailed { rows.reserveCapacity(graph.steps.count) }
        var macs = 0, nonZero = 0, latency = 0.0
        let running = plan.blocks.isEmpty ? nil : graph.runningSteps(removing: plan.blocks)
        let steps = running ?? graph.steps
        for step in steps {
            let cost = stepCost(step, shapes, sparsity[step.layer], signature: detailed || table != nil)
            macs += cost.macs
            nonZero += cost.nonZeroMACs
            latency += cost.latencySeconds
            if detailed { rows.append(cost) }
        }
        let totals = CostReport.Totals(macs: macs, nonZeroMACs: nonZero, paramBytes: paramBytes(shapes, sparsity, steps: steps),
                                       peakActivationBytes: peakActivations(shapes, lifetimes: running.map(graph.lifetimes(of:)) ?? graph.lifetimes),
                                       latencySeconds: latency + profile.runOverheadSeconds)
        return CostReport(profile: profile.name, dtype: profile.dtype, steps: rows, totals: totals)
    }

    func stepCost(_ step: CostGraph.Step, _ shapes: PlannedShapes, _ sparse: PruningPlan.LayerChoice?, signature wanted: Bool) -> StepCost {
        let signature = wanted ? LatencyTable.signature(step, shapes: shapes, dtype: profile.dtype) : ""
        if step.isView {
            return StepCost(name: step.name, kind: step.kind, opClass: step.opClass, macs: 0, nonZeroMACs: 0, paramBytes: 0,
                            ops: 0, bytesMoved: 0, computeSeconds: 0, memorySeconds: 0, latencySeconds: 0, measured: false,
                            signature: signature)
        }
        func bytes(_ v: Int) -> Int { self.bytes(of: v, shapes) }
        let outElements = step.outputs.reduce(0) { $0 + shapes.elements($1) }
        let (macs, paddedMACs) = multiplyAccumulates(step, shapes)
        let density = sparse.map { 1 - $0.sparsity } ?? 1
        let speedup = sparse.flatMap { profile.sparsitySpeedup[$0.pattern] } ?? 1
        var weightBytes = step.weights.reduce(0) { $0 + bytes($1) }
        if let sparse, speedup > 1, let w = step.mainWeight {
            weightBytes += compressedBytes(bytes(w), elements: shapes.elements(w), density: density, pattern: sparse.pattern) - bytes(w)
        }
        let moved = step.inputs.reduce(0) { $0 + bytes($1) } + step.outputs.reduce(0) { $0 + bytes($1) } + weightBytes

        var ops: Double
        switch step.opClass {
        case .conv, .depthwiseConv, .gemm:
            ops = 2 * Double(paddedMACs) + Double(outElements * (step.nodes.count - 1))
        case .pooling:
            ops = step.window > 1 ? Double(step.window * outElements) : Double(step.inputs.reduce(0) { $0 + shapes.elements($1) })
        case .elementwise:
            ops = step.nodes.reduce(0.0) { $0 + Self.opsPerElement(graph.nodes[$1].opType) } * Double(outElements)
        case .dataMovement:
            ops = Double(outElements)
        }
        ops /= speedup
        let (compute, memory) = roofline(ops: ops, bytes: Double(moved), opClass: step.opClass)
        var latency = max(compute, memory) + profile.launchOverheadSeconds
        var measured = false
        if let table, let seconds = tableLatency(table, signature: signature, ops: ops, bytes: Double(moved), opClass: step.opClass) {
            latency = seconds.value
            measured = seconds.exact
        }
        return StepCost(name: step.name, kind: step.kind, opClass: step.opClass, macs: macs,
                        nonZeroMACs: Int((Double(macs) * density).rounded()), paramBytes: weightBytes, ops: ops,
                        bytesMoved: moved, computeSeconds: compute, memorySeconds: memory, latencySeconds: latency,
                        measured: measured, signature: signature)
    }

    func roofline(ops: Double, bytes: Double, opClass: OpClass) -> (compute: Double, memory: Double) {
        Roofline(profile: profile).times(ops: ops, bytes: bytes, opClass: opClass)
    }

    /// One operator on a profile's roofline.
    public struct Roofline: Sendable {
        public let profile: HardwareProfile

        public init(profile: HardwareProfile) { self.profile = profile }

        /// Compute and memory time of `ops` operations moving `bytes` in one operator of `opClass`.
        public func times(ops: Double, bytes: Double, opClass: OpClass) -> (compute: Double, memory: Double) {
            let compute = ops / (profile.peakOpsPerSecond * (profile.efficiency[opClass] ?? 1))
            let onChip = profile.onChipBytes.map { bytes <= Double($0) } ?? false
            let bandwidth = (onChip ? profile.onChipBandwidthGBs ?? profile.memoryBandwidthGBs : profile.memoryBandwidthGBs) * 1e9
            return (compute, bytes / bandwidth)
        }

        /// The larger of the two plus the launch overhead.
        public func latency(ops: Double, bytes: Double, opClass: OpClass) -> Double {
            let (compute, memory) = times(ops: ops, bytes: bytes, opClass: opClass)
            return max(compute, memory) + profile.launchOverheadSeconds
        }
    }

    /// Arithmetic per output element beyond one: transcendental and normalising operators.
    static func opsPerElement(_ opType: String) -> Double {
        switch opType {
        case "Softmax", "LogSoftmax": 5
        case "LayerNormalization", "InstanceNormalization", "GroupNormalization": 8
        case "Exp", "Log", "Tanh", "Sigmoid", "Erf", "Gelu", "Softplus", "HardSwish", "Pow", "Sqrt": 4
        case "BatchNormalization": 2
        default: 1
        }
    }

    func tableLatency(_ table: LatencyTable, signature: String, ops: Double, bytes: Double, opClass: OpClass) -> (value: Double, exact: Bool)? {
        if let entry = table.entries[signature] { return (entry.seconds, true) }
        let key = "\(signature)#\(ops)#\(bytes)"
        if let known = tableAnswers.known.withLock({ $0[key] }) { return known }
        let answer = table.latency(signature: signature, ops: ops, bytes: bytes, alignment: profile.channelAlignment) { ops, bytes in
            Roofline(profile: profile).latency(ops: ops, bytes: bytes, opClass: opClass)
        }
        tableAnswers.known.withLock { $0[key] = .some(answer) }
        return answer
    }

    /// MACs of the step's main node, and the MACs with channel counts padded to the alignment.
    func multiplyAccumulates(_ step: CostGraph.Step, _ shapes: PlannedShapes) -> (Int, Int) {
        let node = graph.nodes[step.nodes[0]]
        let out = step.mainOutput
        switch node.opType {
        case "Conv", "ConvTranspose":
            guard let w = step.mainWeight, graph.values[w].shape.count >= 2 else { return (0, 0) }
            let wShape = graph.values[w].shape
            let spatial = wShape.dropFirst(2).reduce(1, *)
            let perFilter = shapes.dim(w, 1) * spatial
            if node.opType == "Conv" {
                let channels = shapes.dim(out, 1)
                let positions = channels == 0 ? 0 : shapes.elements(out) / channels
                let macs = shapes.elements(out) * perFilter
                let paddedIn = step.opClass == .depthwiseConv ? shapes.dim(w, 1) : profile.aligned(shapes.dim(w, 1))
                return (macs, positions * profile.aligned(channels) * paddedIn * spatial)
            }
            guard let x = step.mainInput else { return (0, 0) }
            let channels = shapes.dim(x, 1)
            let positions = channels == 0 ? 0 : shapes.elements(x) / channels
            let macs = shapes.elements(x) * perFilter
            return (macs, positions * profile.aligned(channels) * profile.aligned(shapes.dim(w, 1)) * spatial)
        case "Gemm", "MatMul":
            guard let a = step.mainInput else { return (0, 0) }
            let rank = graph.values[a].shape.count
            let transA = node.opType == "Gemm" && ((try? node.int("transA", default: 0)) ?? 0) == 1
            let k = rank == 0 ? 1 : shapes.dim(a, transA ? 0 : rank - 1)
            let outRank = graph.values[out].shape.count
            let n = outRank == 0 ? 1 : shapes.dim(out, outRank - 1)
            let rows = n == 0 ? 0 : shapes.elements(out) / n
            return (shapes.elements(out) * k, rows * profile.aligned(n) * profile.aligned(k))
        case "RNN", "GRU", "LSTM":
            // Per step, sequence and direction: every gate row of W and R meets the input and the
            // previous hidden state (W is [directions, gates × hidden, input], R [.., .., hidden]).
            guard let x = step.mainInput, let w = step.mainWeight, let r = node.input(2).flatMap({ graph.index[$0] }),
                  graph.values[x].shape.count == 3, graph.values[w].shape.count == 3 else { return (0, 0) }
            let sequences = shapes.dim(x, 0) * shapes.dim(x, 1) * shapes.dim(w, 0)
            let rows = shapes.dim(w, 1), input = shapes.dim(w, 2), hidden = shapes.dim(r, 2)
            let gates = rows / max(hidden, 1)
            return (sequences * rows * (input + hidden),
                    sequences * gates * profile.aligned(hidden) * (profile.aligned(input) + profile.aligned(hidden)))
        default:
            return (0, 0)
        }
    }

    /// A sparse weight as the runtime stores it: the non-zeros plus their positions (an index of
    /// log2(M) bits per non-zero for N:M, a one-bit mask per element for unstructured).
    func compressedBytes(_ dense: Int, elements: Int, density: Double, pattern: SparsityPattern) -> Int {
        let values = Int((Double(dense) * density).rounded(.up))
        switch pattern {
        case .nOfM(_, let m):
            let bits = Int(ceil(log2(Double(m))))
            return values + (Int((Double(elements) * density).rounded(.up)) * bits + 7) / 8
        case .unstructured:
            return values + (elements + 7) / 8
        }
    }

    /// A value's bytes under a plan: floating-point tensors in the deployment type, others as stored.
    func bytes(of v: Int, _ shapes: PlannedShapes) -> Int {
        let value = graph.values[v]
        return shapes.elements(v) * (value.isFloat ? profile.dtype.bytes : value.elementBytes)
    }

    /// Weights of every step that runs, each tensor counted once.
    func paramBytes(_ shapes: PlannedShapes, _ sparsity: [String: PruningPlan.LayerChoice], steps: [CostGraph.Step]) -> Int {
        var seen = Set<Int>()
        var total = 0
        for step in steps where !step.isView {
            for w in step.weights where seen.insert(w).inserted {
                var bytes = self.bytes(of: w, shapes)
                if w == step.mainWeight, let sparse = sparsity[step.layer], (profile.sparsitySpeedup[sparse.pattern] ?? 1) > 1 {
                    bytes = compressedBytes(bytes, elements: shapes.elements(w), density: 1 - sparse.sparsity, pattern: sparse.pattern)
                }
                total += bytes
            }
        }
        return total
    }

    /// The peak of live activation bytes over the steps, in execution order.
    func peakActivations(_ shapes: PlannedShapes, lifetimes: [CostGraph.Lifetime]) -> Int {
        var delta = [Int](repeating: 0, count: graph.steps.count + 2)
        for lifetime in lifetimes {
            let bytes = self.bytes(of: lifetime.value, shapes)
            delta[lifetime.first] += bytes
            delta[lifetime.last + 1] -= bytes
        }
        var live = 0, peak = 0
        for change in delta {
            live += change
            peak = max(peak, live)
        }
        return peak
    }
}

/// Shapes of the values under a plan: dense sizes with the plan's removed units taken out of
/// every axis a group runs along.
struct PlannedShapes {
    let graph: CostGraph
    private let choices: [Int: PruningPlan.GroupChoice]

    init(graph: CostGraph, plan: PruningPlan) {
        self.graph = graph
        choices = Dictionary(plan.groups.map { ($0.group, $0) }, uniquingKeysWith: { a, _ in a })
    }

    @inline(__always)
    private func removed(_ axis: CostGraph.PrunableAxis) -> Int {
        var total = 0
        for run in axis.runs {
            guard let group = run.group, let choice = choices[group] else { continue }
            let kept = PruningPlan.keptUnits(choice, size: graph.groupSizes[group] ?? run.length, start: run.start, length: run.length)
            total += (run.length - kept) * run.block
        }
        return total
    }

    func dim(_ v: Int, _ axis: Int) -> Int {
        let value = graph.values[v]
        guard axis < value.shape.count else { return 1 }
        var size = value.shape[axis]
        if !choices.isEmpty { for prunable in value.prunableAxes where prunable.axis == axis { size -= removed(prunable) } }
        return size
    }

    func elements(_ v: Int) -> Int {
        let value = graph.values[v]
        guard !choices.isEmpty, !value.prunableAxes.isEmpty else { return value.elements }
        var elements = value.elements
        var done = Set<Int>()
        for prunable in value.prunableAxes where done.insert(prunable.axis).inserted {
            let dense = value.shape[prunable.axis]
            guard dense > 0 else { return 0 }
            elements = elements / dense * dim(v, prunable.axis)
        }
        return elements
    }
}
