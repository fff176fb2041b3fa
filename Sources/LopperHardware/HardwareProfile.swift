import Foundation
import LopperModel
import LopperPruning

/// The number format a model is deployed in; it sets the bytes of every weight and activation.
public enum DeploymentType: String, CaseIterable, Codable, Sendable {
    case fp32, fp16, int8

    public var bytes: Int {
        switch self {
        case .fp32: 4
        case .fp16: 2
        case .int8: 1
        }
    }
}

/// How a device executes an operator, for its efficiency: the fraction of peak it reaches.
public enum OpClass: String, CaseIterable, Codable, Sendable {
    case conv
    case depthwiseConv = "depthwise_conv"
    case gemm
    case elementwise
    case pooling
    case dataMovement = "data_movement"
}

/// A target device as the cost model sees it: a roofline (peak compute, memory bandwidth) with
/// an efficiency per operator class, a launch overhead per operator, channel alignment, the
/// sparsity patterns it turns into speed, and the memory a deployment may use.
/// Schema and sources: `Docs/profiles.md`; shipped profiles: `Config/profiles/`.
public struct HardwareProfile: Sendable, Equatable {
    public var name: String
    public var description: String
    public var dtype: DeploymentType
    /// Peak arithmetic throughput per number format, 10^9 ops/s (a multiply-accumulate is 2 ops).
    public var peakGops: [DeploymentType: Double]
    /// Fraction of the peak reached per operator class, in (0, 1].
    public var efficiency: [OpClass: Double]
    /// External memory bandwidth, 10^9 bytes/s.
    public var memoryBandwidthGBs: Double
    /// Cache or SRAM: an operator whose working set fits moves its bytes at `onChipBandwidthGBs`.
    public var onChipBytes: Int?
    public var onChipBandwidthGBs: Double?
    /// Memory the deployment may use for weights and for peak live activations.
    public var weightMemoryBytes: Int
    public var activationMemoryBytes: Int
    /// Fixed cost of running one operator (kernel launch, dispatch), seconds.
    public var launchOverheadSeconds: Double
    /// Fixed cost of one inference beyond its operators (invoking the runtime), seconds.
    public var runOverheadSeconds: Double = 0
    /// Channel counts are padded up to a multiple of this for compute.
    public var channelAlignment: Int
    /// Speed-up of a layer's compute time per sparsity pattern; patterns not listed get none.
    public var sparsitySpeedup: [SparsityPattern: Double]
    /// Budgets used when the command line gives none, in `--budget` syntax (`latency=0.5x`).
    public var defaultBudgets: String?

    public init(name: String, description: String, dtype: DeploymentType, peakGops: [DeploymentType: Double],
                efficiency: [OpClass: Double], memoryBandwidthGBs: Double, onChipBytes: Int? = nil,
                onChipBandwidthGBs: Double? = nil, weightMemoryBytes: Int, activationMemoryBytes: Int,
                launchOverheadSeconds: Double, channelAlignment: Int, sparsitySpeedup: [SparsityPattern: Double] = [:],
                defaultBudgets: String? = nil, runOverhead: Double = 0) {
        runOverheadSeconds = runOverhead
        self.name = name
        self.description = description
        self.dtype = dtype
        self.peakGops = peakGops
        self.efficiency = efficiency
        self.memoryBandwidthGBs = memoryBandwidthGBs
        self.onChipBytes = onChipBytes
        self.onChipBandwidthGBs = onChipBandwidthGBs
        self.weightMemoryBytes = weightMemoryBytes
        self.activationMemoryBytes = activationMemoryBytes
        self.launchOverheadSeconds = launchOverheadSeconds
        self.channelAlignment = channelAlignment
        self.sparsitySpeedup = sparsitySpeedup
        self.defaultBudgets = defaultBudgets
    }

    /// Peak ops/s in the deployment type.
    public var peakOpsPerSecond: Double { (peakGops[dtype] ?? 0) * 1e9 }

    /// Channel count padded up to the alignment multiple.
    @inline(__always)
    public func aligned(_ channels: Int) -> Int {
        channelAlignment <= 1 ? channels : (channels + channelAlignment - 1) / channelAlignment * channelAlignment
    }
}

/// Byte sizes as profiles and budgets write them: `2MB` (10^6), `512KiB` (2^10), `1.5GB`, `4096`.
public enum ByteSize {
    static let units: [(suffix: String, factor: Double)] = [
        ("KiB", 1024), ("MiB", 1024 * 1024), ("GiB", 1024 * 1024 * 1024),
        ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("B", 1),
    ]

    public static func parse(_ text: String) -> Int? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for (suffix, factor) in units where trimmed.hasSuffix(suffix) {
            guard let number = Double(trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)),
                  number >= 0, number * factor < 9e18 else { return nil }
            return Int((number * factor).rounded())
        }
        return Int(trimmed).flatMap { $0 >= 0 ? $0 : nil }
    }
}

