/// Erdős–Rényi-Kernel densities (Evci et al., "Rigging the Lottery: Making All Tickets Winners",
/// ICML 2020), the unstructured-sparsity baseline: a layer's density is proportional to
/// `(n_in + n_out + k_h + k_w) / (n_in · n_out · k_h · k_w)` (Erdős–Rényi, without the kernel
/// terms, for dense layers), scaled so that the kept weights are the global density's share of
/// all weights. A layer whose density would pass 1 stays dense and the rest are scaled again.
extension Baselines {
    /// A layer's weight shape; `kernel` is empty for a dense (fully connected) layer.
    public struct LayerShape: Hashable, Sendable {
        public var group: Int
        public var inputs: Int
        public var outputs: Int
        public var kernel: [Int]
        /// Weights that stay whatever the density (default 1).
        public var minimumKept: Int

        public init(group: Int, inputs: Int, outputs: Int, kernel: [Int] = [], minimumKept: Int = 1) {
            self.group = group
            self.inputs = inputs
            self.outputs = outputs
            self.kernel = kernel
            self.minimumKept = minimumKept
        }

        public var weightCount: Int { inputs * outputs * kernel.reduce(1, *) }

        /// The ERK (or ER) factor before scaling.
        var erdosRenyiFactor: Double {
            Double(inputs + outputs + kernel.reduce(0, +)) / Double(weightCount)
        }
    }

    /// The density of each layer (by group) at global density `density` in [0, 1].
    public static func erkDensities(_ layers: [LayerShape], density: Double) throws -> [Int: Double] {
        try validate(layers)
        guard density >= 0, density <= 1 else {
            throw BaselineError.invalidInput("ERK global density \(density) is outside [0, 1]")
        }
        let total = layers.reduce(0.0) { $0 + Double($1.weightCount) }
        var dense = Set<Int>()  // indices of layers held at density 1
        while true {
            let denseWeights = dense.reduce(0.0) { $0 + Double(layers[$1].weightCount) }
            let sparse = layers.indices.filter { !dense.contains($0) }
            let weighted = sparse.reduce(0.0) { $0 + layers[$1].erdosRenyiFactor * Double(layers[$1].weightCount) }
            let scale = weighted == 0 ? 0 : max(0, density * total - denseWeights) / weighted
            // The largest factor passes 1 first; hold it dense and scale the rest again.
            guard let widest = sparse.max(by: { (layers[$0].erdosRenyiFactor, $1) < (layers[$1].erdosRenyiFactor, $0) }),
                  scale * layers[widest].erdosRenyiFactor > 1 else {
                return Dictionary(uniqueKeysWithValues: layers.indices.map { i in
                    (layers[i].group, dense.contains(i) ? 1 : scale * layers[i].erdosRenyiFactor)
                })
            }
            dense.insert(widest)
        }
    }

    /// ERK at the largest global density whose kept weights (each layer's density × weights,
    /// rounded, at least `minimumKept`) meet the limits; bisection on the density to 2^-40.
    public static func erk(_ layers: [LayerShape], limits: ResourceAmounts, cost: CostOracle) throws
        -> (densities: [Int: Double], kept: [Int: Int], cost: ResourceAmounts, globalDensity: Double) {
        try validate(layers)
        let kept = { (density: Double) throws -> [Int: Int] in
            let densities = try erkDensities(layers, density: density)
            return Dictionary(uniqueKeysWithValues: layers.map { layer in
                let count = (densities[layer.group]! * Double(layer.weightCount)).rounded()
                return (layer.group, min(layer.weightCount, max(min(layer.minimumKept, layer.weightCount), Int(count))))
            })
        }
        // Step 0 is density 1, step 1 density 0: refuses limits even density 0 misses.
        var fitting = 1.0
        if try smallestFittingStep(1, .erk, { try kept($0 == 0 ? 1 : 0) }, limits, cost) == 1 {
            fitting = 0
            var failing = 1.0
            while failing - fitting > 0x1p-40 {
                let middle = (fitting + failing) / 2
                if try meets(cost(kept(middle)), limits) { fitting = middle } else { failing = middle }
            }
        }
        let counts = try kept(fitting)
        return (try erkDensities(layers, density: fitting), counts, try cost(counts), fitting)
    }

    private static func validate(_ layers: [LayerShape]) throws {
        var seen = Set<Int>()
        for layer in layers {
            guard seen.insert(layer.group).inserted else { throw BaselineError.invalidInput("group \(layer.group) is listed twice") }
            guard layer.inputs > 0, layer.outputs > 0, layer.kernel.allSatisfy({ $0 > 0 }) else {
                throw BaselineError.invalidInput("group \(layer.group): layer shape \(layer.inputs)×\(layer.outputs)×\(layer.kernel) has a dimension below 1")
            }
            guard layer.minimumKept >= 0 else {
                throw BaselineError.invalidInput("group \(layer.group): minimumKept \(layer.minimumKept) is negative")
            }
        }
    }
}
