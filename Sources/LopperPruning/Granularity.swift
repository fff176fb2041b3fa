/// What pruning removes: the one vocabulary of `lopper prune` and of sweep specs and jobs.
public enum Granularity: String, Codable, CaseIterable, Sendable {
    /// Whole channels of a channel group (filters, neurons).
    case channel
    /// Whole heads of an attention group.
    case head
    /// The smallest weights of the group's producing layers, by magnitude.
    case unstructured
    /// N:M semi-structured sparsity (2:4 and 4:8) in the group's producing layers; a sweep
    /// job's criterion names the pattern and its level is the fraction zeroed.
    case nm
    /// Whole residual blocks (`ResidualBlocks`): removed (criterion `skip`), or replaced by their
    /// branch's mean output over the calibration data (criterion `mean`). Level 1.
    case layer

    /// Whether it zeroes weights in the producing layers rather than remove units.
    public var zeroesWeights: Bool { self == .unstructured || self == .nm }
}
