import Foundation
import LopperModel

/// One operator, prepared for a node: attributes parsed and constant weights packed at load.
///
/// `run` receives the node's inputs by position (`nil` for an omitted optional input) and
/// returns one tensor per output. Kernels never modify their inputs. Errors are `ModelError`s
/// without a node; the executor adds the node, op and opset.
protocol Kernel {
    func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor]
}

/// A kernel that allocates its (first) output with `ExecutionContext.output`, so that the plan
/// can have it written straight into its slice of a Concat's result.
protocol DestinationWriting: Kernel {}

/// A kernel whose result can pass through an activation before it is written out.
protocol ActivationFusing: Kernel {
    func fusing(_ activation: Activation) -> Kernel
}

/// What a kernel is built from.
struct KernelSetup {
    let node: Node
    let opset: Int
    /// Inputs whose values are known at load time, by position.
    let constants: [Tensor?]
    /// The model the node belongs to (for `Constant` nodes whose data is external, and the
    /// bodies of control-flow nodes).
    let model: Model

    var graph: Graph { model.graph }

    func constant(_ position: Int) -> Tensor? {
        position < constants.count ? constants[position] : nil
    }
}

typealias KernelFactory = (KernelSetup) throws -> Kernel

/// One entry of the registry: `op` has this meaning from opset `since` on.
struct KernelVersion {
    let op: String
    let since: Int
    let make: KernelFactory

    init(_ op: String, since: Int = 1, _ make: @escaping KernelFactory) {
        self.op = op
        self.since = since
        self.make = make
    }
}

/// Operator type → kernel versions, collected from the per-family files.
enum KernelRegistry {
    /// Keyed by `Node.qualifiedOpType`.
    static let versions: [String: [KernelVersion]] = {
        let all = ElementwiseKernels.all + ActivationKernels.all + ConvKernels.all + PoolingKernels.all
            + ShapeKernels.all + LayoutKernels.all + ResizeKernels.all + ReductionKernels.all
            + NormalizationKernels.all + MatMulKernels.all + GeneratorKernels.all
            + RecurrentKernels.all + ControlFlowKernels.all + ElementwiseMathKernels.all + IndexingKernels.all
            + GroupNormalizationKernels.all + SpaceDepthKernels.all + MachineLearningKernels.all
            + EinsumKernels.all
        return Dictionary(grouping: all, by: \.op).mapValues { $0.sorted { $0.since > $1.since } }
    }()

    static var operators: [String] { versions.keys.sorted() }

    /// The newest version not newer than the model's opset.
    static func factory(for node: Node, opset: Int) -> KernelFactory? {
        versions[node.qualifiedOpType]?.first { $0.since <= opset }?.make
    }
}

/// Threads available to kernels during one run.
public struct ExecutionContext: Sendable {
    public let threads: Int
    /// Where the step's output goes when the plan placed it inside a Concat's result.
    var destination: Tensor?

    init(threads: Int, destination: Tensor? = nil) {
        self.threads = threads
        self.destination = destination
    }

    /// The step's output: the planned destination when it has this type and shape, else new memory.
    func output(_ type: ElementType, shape: [Int]) throws -> Tensor {
        if let destination, destination.elementType == type, destination.shape == shape { return destination }
        return try Tensor(uninitialized: type, shape: shape)
    }

    /// Below this many elementary operations (about 25 µs of the Conv kernel's work) a job runs
    /// on the calling thread: handing a region to a helper costs microseconds when it is
    /// spinning, and a time slice when the machine's other work has descheduled it.
    static let minimumParallelCost = 1 << 20

    /// Calls `body` on disjoint ranges covering `0..<count`, on up to `threads` threads.
    /// `grain` is the smallest range worth a thread of its own; `cost` estimates the whole job's
    /// operations (when less than `minimumParallelCost`, it runs on the calling thread).
    /// `chunksPerThread` above 1 cuts the job finer, for bodies whose items differ in cost: the
    /// threads then take chunks as they finish (only for bodies whose results do not depend on
    /// how `0..<count` is cut).
    func parallel(_ count: Int, grain: Int = 1, cost: Int = .max, chunksPerThread: Int = 1, _ body: (Range<Int>) -> Void) {
        let chunks = cost < Self.minimumParallelCost || threads == 1 ? 1 : min(threads * chunksPerThread, count / max(grain, 1))
        if chunks <= 1 {
            if count > 0 { body(0..<count) }
            return
        }
        SpinningPool.shared(threads: threads).run(chunks: chunks) { chunk in
            let start = count * chunk / chunks, end = count * (chunk + 1) / chunks
            if start < end { body(start..<end) }
        }
    }
}

/// Helpers kernels use to read inputs.
extension Array where Element == Tensor? {
    func required(_ position: Int) throws -> Tensor {
        guard position < count, let tensor = self[position] else {
            throw ModelError("input \(position) is required but missing")
        }
        return tensor
    }

    func optional(_ position: Int) -> Tensor? {
        position < count ? self[position] : nil
    }
}

extension Tensor {
    func requireFloat(_ what: String = "input") throws {
        guard kind == .float else { throw ModelError("\(what) must be floating point, found \(elementType)") }
    }

    /// Integer elements of a small tensor such as axes, shapes or pads.
    var ints: [Int] { int64s.map { Int($0) } }
}

/// Normalises an axis in `-rank..<rank`.
func normalizeAxis(_ axis: Int, rank: Int, _ what: String = "axis") throws -> Int {
    let a = axis < 0 ? axis + rank : axis
    guard a >= 0 && a < max(rank, 1) else { throw ModelError("\(what) \(axis) is out of range for rank \(rank)") }
    return a
}

func strides(of shape: [Int]) -> [Int] {
    var result = [Int](repeating: 1, count: shape.count)
    var step = 1
    for d in stride(from: shape.count - 1, through: 0, by: -1) {
        result[d] = step
        step *= shape[d]
    }
    return result
}
