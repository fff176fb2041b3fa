/// The operators Lopper supports, on one page: each maps to the rule that infers its output
/// shapes. The runtime registers a kernel for every operator listed here, so this list is also
/// what `lopper inspect` reports as supported. Opset differences live inside the rules.
public enum OpSet {
    typealias ShapeRule = (ShapeContext) throws -> [ValueFacts]

    private static let rules: [String: ShapeRule] = {
        var table: [String: ShapeRule] = [:]
        let unary = ["Relu", "Sigmoid", "Tanh", "Exp", "Log", "Neg", "Abs", "Reciprocal", "Erf", "Sqrt",
                     "LeakyRelu", "HardSigmoid", "HardSwish", "Elu", "Selu", "Softplus", "Gelu", "Clip",
                     "Softmax", "LogSoftmax", "Identity", "Not", "Floor", "Ceil", "Round", "Sign", "Sin", "Cos",
                     "Hardmax", "CumSum", "InstanceNormalization", "GroupNormalization"]
        for op in unary { table[op] = ElementwiseRules.sameAsInput }
        for op in ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "PRelu", "Mod"] {
            table[op] = ElementwiseRules.broadcasting()
        }
        for op in ["Equal", "Less", "Greater", "GreaterOrEqual", "LessOrEqual", "And", "Or"] {
            table[op] = ElementwiseRules.broadcasting(resultType: .bool)
        }
        table["Where"] = ElementwiseRules.where
        table["Cast"] = ElementwiseRules.cast
        table["Dropout"] = ElementwiseRules.dropout
        table["BatchNormalization"] = ElementwiseRules.batchNormalization
        table["LayerNormalization"] = ElementwiseRules.layerNormalization

        table["Conv"] = ConvolutionRules.conv
        table["ConvTranspose"] = ConvolutionRules.convTranspose
        table["MaxPool"] = ConvolutionRules.pool
        table["AveragePool"] = ConvolutionRules.pool
        table["GlobalAveragePool"] = ConvolutionRules.globalPool
        table["GlobalMaxPool"] = ConvolutionRules.globalPool

        for cell in RecurrentCell.allCases { table[cell.op] = RecurrentRules.recurrent }
        table["GatherElements"] = IndexingRules.gatherElements
        table["ScatterND"] = ElementwiseRules.sameAsInput
        table["TopK"] = IndexingRules.topK
        table["NonZero"] = IndexingRules.nonZero
        table["Einsum"] = IndexingRules.einsum
        table["DepthToSpace"] = IndexingRules.spaceDepth
        table["SpaceToDepth"] = IndexingRules.spaceDepth
        table["ai.onnx.ml.ArrayFeatureExtractor"] = IndexingRules.arrayFeatureExtractor
        table["If"] = ControlFlowRules.if
        table["Loop"] = ControlFlowRules.loop
        table["Scan"] = ControlFlowRules.scan

        table["Gemm"] = MathRules.gemm
        table["MatMul"] = MathRules.matMul
        for op in ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare",
                   "ReduceLogSum", "ReduceLogSumExp"] { table[op] = MathRules.reduce }
        table["ArgMax"] = MathRules.argMax
        table["Constant"] = MathRules.constant
        table["ConstantOfShape"] = MathRules.constantOfShape
        table["Shape"] = MathRules.shape
        table["Size"] = MathRules.size
        table["Range"] = MathRules.range

        table["Reshape"] = LayoutRules.reshape
        table["Flatten"] = LayoutRules.flatten
        table["Transpose"] = LayoutRules.transpose
        table["Squeeze"] = LayoutRules.squeeze
        table["Unsqueeze"] = LayoutRules.unsqueeze
        table["Concat"] = LayoutRules.concat
        table["Split"] = LayoutRules.split
        table["Slice"] = LayoutRules.slice
        table["Gather"] = LayoutRules.gather
        table["Expand"] = LayoutRules.expand
        table["Tile"] = LayoutRules.tile
        table["Pad"] = LayoutRules.pad
        table["Resize"] = LayoutRules.resize
        table["Upsample"] = LayoutRules.resize
        return table
    }()

    /// Every supported operator, sorted; those of other domains carry their domain
    /// (`Node.qualifiedOpType`).
    public static var supportedOperators: [String] { rules.keys.sorted() }

    public static func supports(_ node: Node) -> Bool { shapeRule(for: node) != nil }

    static func shapeRule(for node: Node) -> ShapeRule? {
        rules[node.qualifiedOpType]
    }
}
