import Foundation
import LopperModel

/// A sparsity pattern a layer's weight can follow.
public enum SparsityPattern: Hashable, Sendable, CustomStringConvertible, Codable {
    /// Any weights zeroed, wherever they are.
    case unstructured
    /// At most `n` non-zeros in every block of `m` consecutive weights along the reduction axis.
    case nOfM(n: Int, m: Int)

    /// Parses `unstructured` or `N:M` (0 < N < M).
    public init(parsing text: String) throws {
        if text == "unstructured" { self = .unstructured; return }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let n = Int(parts[0]), let m = Int(parts[1]), n > 0, n < m else {
            throw ModelError("'\(text)' is not a sparsity pattern: expected 'unstructured' or N:M with 0 < N < M, such as 2:4")
        }
        self = .nOfM(n: n, m: m)
    }

    public var description: String {
        switch self {
        case .unstructured: "unstructured"
        case .nOfM(let n, let m): "\(n):\(m)"
        }
    }

    public init(from decoder: Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(parsing: text) } catch let error as ModelError {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.message))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

/// What to prune in a model: how many units each group keeps (and which, when known) and which
/// layers get weight sparsity. The allocator produces plans; the cost model prices them and
/// export applies them.
public struct PruningPlan: Sendable, Equatable, Codable {
    public struct GroupChoice: Sendable, Equatable, Codable {
        public var group: Int
        /// Units (channels or heads) kept.
        public var kept: Int
        /// The kept units in the group's numbering, sorted; `nil` until importance has chosen them.
        public var indices: [Int]?

        public init(group: Int, kept: Int, indices: [Int]? = nil) {
            self.group = group
            self.kept = kept
            self.indices = indices
        }
    }

    public struct LayerChoice: Sendable, Equatable, Codable {
        /// The layer (node display name) whose weight is sparsified.
        public var node: String
        public var pattern: SparsityPattern
        /// Fraction of the weight's elements that are zero.
        public var sparsity: Double

        public init(node: String, pattern: SparsityPattern, sparsity: Double) {
            self.node = node
            self.pattern = pattern
            self.sparsity = sparsity
        }
    }

    /// A residual block removed whole (`ResidualBlocks`, `BlockSurgery`).
    public struct BlockChoice: Sendable, Equatable, Codable {
        public var block: Int
        /// The block's join (Add) and the branch's nodes, by display name.
        public var join: String
        public var nodes: [String]
        public var removal: BlockRemoval

        public init(block: ResidualBlock, removal: BlockRemoval) {
            self.block = block.id
            join = block.join
            nodes = block.nodes
            self.removal = removal
        }

        /// The nodes that no longer run: the branch, and the join unless the mean replaces the branch.
        public var removedNodes: [String] { removal == .skip ? nodes + [join] : nodes }
    }

    public var groups: [GroupChoice]
    public var layers: [LayerChoice]
    public var blocks: [BlockChoice]

    public init(groups: [GroupChoice] = [], layers: [LayerChoice] = [], blocks: [BlockChoice] = []) {
        self.groups = groups
        self.layers = layers
        self.blocks = blocks
    }

    enum CodingKeys: String, CodingKey { case groups, layers, blocks }

    /// `blocks` may be absent (plans written before blocks could be removed).
    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        groups = try container.decode([GroupChoice].self, forKey: .groups)
        layers = try container.decode([LayerChoice].self, forKey: .layers)
        blocks = try container.decodeIfPresent([BlockChoice].self, forKey: .blocks) ?? []
    }

    /// The dense model: nothing pruned.
    public static let dense = PruningPlan()

    /// Checks the plan against the model's groups, naming the first choice that does not fit.
    public func validate(against groups: [PruneGroup]) throws {
        var seen = Set<Int>()
        for choice in self.groups {
            guard let group = groups.first(where: { $0.id == choice.group }) else {
                throw ModelError("the plan names group \(choice.group), but the model has groups 0..<\(groups.count)", field: "groups")
            }
            guard seen.insert(choice.group).inserted else { throw ModelError("the plan names group \(choice.group) twice", field: "groups") }
            guard choice.kept >= 1, choice.kept <= group.size else {
                throw ModelError("group \(choice.group) '\(group.name)' has \(group.size) units; the plan keeps \(choice.kept)", field: "groups")
            }
            if choice.kept < group.size, let reason = group.blockedBecause {
                throw ModelError("group \(choice.group) '\(group.name)' cannot be pruned: \(reason)", field: "groups")
            }
            if let indices = choice.indices {
                guard indices.count == choice.kept, indices == indices.sorted(), Set(indices).count == indices.count,
                      indices.allSatisfy({ $0 >= 0 && $0 < group.size }) else {
                    throw ModelError("group \(choice.group): 'indices' must be \(choice.kept) distinct sorted units in 0..<\(group.size)", field: "groups")
                }
            }
        }
        for layer in layers where !(layer.sparsity >= 0 && layer.sparsity < 1) {
            throw ModelError("layer '\(layer.node)': sparsity \(layer.sparsity) must be in [0, 1)", field: "layers")
        }
    }

    /// The units each group with chosen indices removes, as `ChannelSurgery.prune` takes them.
    public func removedUnits(groups: [PruneGroup]) -> [Int: [Int]] {
        Dictionary(uniqueKeysWithValues: self.groups.compactMap { choice -> (Int, [Int])? in
            guard let indices = choice.indices, let group = groups.first(where: { $0.id == choice.group }) else { return nil }
            let kept = Set(indices)
            return (choice.group, (0..<group.size).filter { !kept.contains($0) })
        })
    }

    /// Units a group keeps within the run `[start, start + length)` of its numbering: exact when
    /// the plan has indices, else the kept fraction of the run, rounded.
    public func kept(group: Int, size: Int, start: Int, length: Int) -> Int {
        guard let choice = groups.first(where: { $0.group == group }) else { return length }
        return Self.keptUnits(choice, size: size, start: start, length: length)
    }

    /// Units `choice` keeps within the run `[start, start + length)` of a group of `size`.
    public static func keptUnits(_ choice: GroupChoice, size: Int, start: Int, length: Int) -> Int {
        if let indices = choice.indices {
            return indices.reduce(0) { $0 + (($1 >= start && $1 < start + length) ? 1 : 0) }
        }
        if length == size { return choice.kept }
        return Int((Double(length) * Double(choice.kept) / Double(size)).rounded())
    }
}

extension PruningPlan {
    /// Reads a plan from JSON, naming the file on error.
    public static func load(path: String) throws -> PruningPlan {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ModelError("cannot read plan: \(error.localizedDescription)").inFile(path)
        }
        do { return try JSONDecoder().decode(PruningPlan.self, from: data) } catch let error as DecodingError {
            throw ModelError("not a pruning plan: \(error.readable)").inFile(path)
        }
    }
}

extension DecodingError {
    /// The coding path and the problem, for an error message.
    public var readable: String {
        func path(_ context: Context) -> String {
            let keys = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
            return keys.isEmpty ? "" : "at \(keys.hasPrefix(".") ? String(keys.dropFirst()) : keys): "
        }
        switch self {
        case .keyNotFound(let key, let context): return "\(path(context))missing key '\(key.stringValue)'"
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return "\(path(context))\(context.debugDescription)"
        @unknown default: return "\(self)"
        }
    }
}
