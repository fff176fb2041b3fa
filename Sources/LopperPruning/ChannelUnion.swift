/// Union-find over channel numberings with offsets: `unite(a, b, offset: d)` records that channel
/// `i` of `a` is channel `i + d` of `b`. A residual Add joins two numberings at offset 0; an Add
/// with the second half of a Split joins at the half's start.
struct ChannelUnion {
    private var parent: [Int] = []
    /// Offset of each set's numbering within its parent's.
    private var offset: [Int] = []
    private(set) var size: [Int] = []
    private var blocked: [Int: String] = [:]
    /// Sets that another set was attached under.
    private var hasChildren: Set<Int> = []

    mutating func make(size n: Int) -> Int {
        parent.append(parent.count)
        offset.append(0)
        size.append(n)
        return parent.count - 1
    }

    var count: Int { parent.count }

    /// The root of `set` and where `set`'s channel 0 sits in the root's numbering.
    func find(_ set: Int) -> (root: Int, offset: Int) {
        var node = set, total = 0
        while parent[node] != node {
            total += offset[node]
            node = parent[node]
        }
        return (node, total)
    }

    /// Joins channel `i` of `a` to channel `i + delta` of `b`. A relation that would need one
    /// numbering to stick out of the other blocks both (never prune what we cannot map).
    mutating func unite(_ a: Int, _ b: Int, offset delta: Int) {
        let (ra, oa) = find(a), (rb, ob) = find(b)
        // Channel x of root ra is channel x - oa + delta + ob of root rb.
        let shift = ob + delta - oa
        if ra == rb {
            if shift != 0 { block(ra, because: "channels are joined to themselves at a different position") }
            return
        }
        if shift >= 0 && shift + size[ra] <= size[rb] {
            attach(ra, under: rb, at: shift)
        } else if shift <= 0 && -shift + size[rb] <= size[ra] {
            attach(rb, under: ra, at: -shift)
        } else {
            attach(ra, under: rb, at: max(0, min(shift, size[rb])))
            block(rb, because: "channels of different widths are joined at overlapping positions")
        }
    }

    private mutating func attach(_ child: Int, under root: Int, at position: Int) {
        hasChildren.insert(root)
        parent[child] = root
        offset[child] = position
        if let reason = blocked.removeValue(forKey: child), blocked[root] == nil { blocked[root] = reason }
    }

    /// Whether `set` stands alone: never joined with another set.
    func isAlone(_ set: Int) -> Bool { parent[set] == set && !hasChildren.contains(set) }

    /// Renumbers a lone set in units of `factor` channels (a head of `factor` channels becomes one unit).
    mutating func regroup(_ set: Int, by factor: Int) {
        precondition(isAlone(set) && size[set] % factor == 0)
        size[set] /= factor
    }

    mutating func block(_ set: Int, because reason: String) {
        let root = find(set).root
        if blocked[root] == nil { blocked[root] = reason }
    }

    func blockReason(_ set: Int) -> String? { blocked[find(set).root] }
}
