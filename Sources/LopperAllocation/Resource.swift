/// A resource a pruned model consumes, on which a budget can be set.
///
/// Units: `latency` in seconds, `macs` in multiply-accumulates, `paramBytes` and
/// `peakActivationBytes` in bytes. The solvers treat every limited resource as additive over
/// groups (`fixedCost + Σ chosen contributions`). That is true of the first three. Peak
/// activation memory is a maximum over the schedule, not a sum: the caller gives an additive
/// per-group estimate and checks the result against the real cost.
public enum Resource: String, CaseIterable, Codable, CodingKeyRepresentable, Comparable, Sendable {
    case latency
    case macs
    case paramBytes
    case peakActivationBytes

    /// The name a budget uses (`latency=8ms,params=2MB,macs=1.2G,activations=512KiB`).
    public var budgetName: String {
        switch self {
        case .latency: return "latency"
        case .macs: return "macs"
        case .paramBytes: return "params"
        case .peakActivationBytes: return "activations"
        }
    }

    /// The resource a budget names (`latency`, `macs`, `params`, `activations`).
    public init?(budgetName: String) {
        guard let resource = Resource.allCases.first(where: { $0.budgetName == budgetName }) else { return nil }
        self = resource
    }

    /// Whether the resource really is a sum over groups (see the type's comment).
    public var isAdditive: Bool { self != .peakActivationBytes }

    /// `value` in this resource's units, readable: `8.25 ms`, `1.2 G MACs`, `2.00 MB`.
    public func format(_ value: Double) -> String {
        switch self {
        case .latency:
            return value.magnitude < 1e-3 ? "\(fixed(value * 1e6)) us" : "\(fixed(value * 1e3)) ms"
        case .macs:
            return scaled(value, units: [(1e9, " G"), (1e6, " M"), (1e3, " K")], plain: "") + " MACs"
        case .paramBytes, .peakActivationBytes:
            return scaled(value, units: [(1e9, " GB"), (1e6, " MB"), (1e3, " KB")], plain: " B")
        }
    }

    public static func < (a: Resource, b: Resource) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }

    private func scaled(_ value: Double, units: [(Double, String)], plain: String) -> String {
        for (factor, suffix) in units where value.magnitude >= factor {
            return fixed(value / factor) + suffix
        }
        return fixed(value) + plain
    }

    /// Rounded to three decimals, without a trailing `.0`.
    private func fixed(_ value: Double) -> String {
        let rounded = (value * 1000).rounded() / 1000
        if rounded == rounded.rounded() && rounded.magnitude < 1e15 { return String(Int(rounded)) }
        return String(rounded)
    }
}

/// An amount of each resource; a missing resource is zero.
public typealias ResourceAmounts = [Resource: Double]
