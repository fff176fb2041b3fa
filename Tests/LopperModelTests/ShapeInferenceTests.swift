import Foundation
import LopperModel
import LopperTesting
import ONNXProto
import Testing

@Suite struct ShapeInferenceTests {
    @Test(.enabled(if: Reference.isAvailable), arguments: Fixtures.runnableFixtures.map(Fixtures.model))
    func fixtureShapesMatchRuntime(path: String) throws {
        try expectShapesMatchRuntime(path)
    }

    @Test(.enabled(if: Reference.isAvailable && Fixtures.hasRealModels),
          arguments: [Fixtures.ocrDetector, Fixtures.ocrClassifier, Fixtures.digitsClassifier])
    func realModelShapesMatchRuntime(path: String) throws {
        try expectShapesMatchRuntime(path)
    }

    /// Every value we infer statically must have the shape ONNX Runtime actually produces, and
    /// with concrete inputs every value of a supported node must be inferred.
    private func expectShapesMatchRuntime(_ path: String) throws {
        let name = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let model = try Model.load(path: path)
        let given = Fixtures.inputShape(for: path).map { ["x": $0] } ?? [:]
        var overrides: [String: [Dim]] = [:]
        for input in model.graph.feedInputs {
            let declared = input.type?.shape ?? []
            overrides[input.name] = (given[input.name] ?? declared.enumerated().map { $0.offset == 0 ? 1 : ($0.element.value ?? 1) }).map { .value($0) }
        }
        let table = try ShapeInference.run(model, inputShapes: overrides)
        let shapeArguments = overrides.flatMap { ["--shape", "\($0.key)=" + $0.value.map(\.description).joined(separator: "x")] }
        let actual = try Reference.call(["shapes", path] + shapeArguments)
        var compared = 0
        // Values computed from an unsupported node's outputs may legitimately stay unknown.
        var tainted = Set(table.unsupported.flatMap(\.outputs))
        for node in model.graph.nodes where OpSet.supports(node) {
            let downstreamOfUnsupported = node.inputs.contains { tainted.contains($0) }
            if downstreamOfUnsupported { tainted.formUnion(node.outputs) }
            for output in node.outputs where !output.isEmpty {
                guard let observed = actual[output] as? [Int] else { continue }
                let inferred = table[output]?.concreteShape
                if downstreamOfUnsupported && inferred == nil { continue }
                #expect(inferred == observed, "\(name): \(node.label) output '\(output)'")
                compared += 1
            }
        }
        #expect(compared > 0)
    }

    @Test func symbolicBatchFlowsThroughComputedReshape() throws {
        // c2f_block's head computes its Reshape target with Shape → Gather → Unsqueeze → Concat.
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        let table = try ShapeInference.run(model)
        #expect(table["logits"]?.shape == [.symbol("N"), .value(10)])
        let transformer = try Model.load(path: Fixtures.model("transformer_encoder"))
        let output = try #require(transformer.graph.outputs.first)
        #expect(try ShapeInference.run(transformer)[output.name]?.shape == [.symbol("N"), .symbol("S"), .value(64)])
    }

    @Test func convolutionArithmetic() throws {
        // Hand-computed: 17 + 1 + 2 - 3 = 17, / 2 → 8 (+1) = 9; SAME_UPPER → ceil(17 / 2) = 9; VALID → (17 - 3) / 2 + 1 = 8.
        #expect(try convOutput(pads: [1, 1, 2, 2], autoPad: nil) == [1, 4, 9, 9])
        #expect(try convOutput(pads: nil, autoPad: "SAME_UPPER") == [1, 4, 9, 9])
        #expect(try convOutput(pads: nil, autoPad: "VALID") == [1, 4, 8, 8])
        // Dilation 2 makes the 3-tap kernel span 5: (17 - 5) / 2 + 1 = 7.
        #expect(try convOutput(pads: nil, autoPad: nil, dilations: [2, 2]) == [1, 4, 7, 7])
    }

    @Test func poolingCeilMode() throws {
        // Kernel 3, stride 2 over 32: floor (32 - 3) / 2 + 1 = 15, ceil → 16, ceil with pad 1 → 17.
        #expect(try poolOutput(input: 32, kernel: 3, stride: 2, pads: 0, ceil: false) == 15)
        #expect(try poolOutput(input: 32, kernel: 3, stride: 2, pads: 0, ceil: true) == 16)
        #expect(try poolOutput(input: 32, kernel: 3, stride: 2, pads: 1, ceil: true) == 17)
        // Kernel 2, stride 3 over 4 with pad 1: ceil gives 3 windows, but the third would start at
        // padded position 6, past the input and its begin padding (5), so it is dropped (as ONNX Runtime does).
        #expect(try poolOutput(input: 4, kernel: 2, stride: 3, pads: 1, ceil: true) == 2)
    }

    private func convOutput(pads: [Int]?, autoPad: String?, dilations: [Int]? = nil) throws -> [Int]? {
        var attributes: [Onnx_AttributeProto] = [.ints("strides", [2, 2])]
        if let pads { attributes.append(.ints("pads", pads)) }
        if let autoPad { attributes.append(.string("auto_pad", autoPad)) }
        if let dilations { attributes.append(.ints("dilations", dilations)) }
        let model = try TinyModel.single("Conv", input: [1, 2, 17, 17], weights: ["w": [4, 2, 3, 3]], attributes: attributes)
        return try ShapeInference.run(model)["y"]?.concreteShape
    }

    private func poolOutput(input: Int, kernel: Int, stride: Int, pads: Int, ceil: Bool) throws -> Int? {
        let model = try TinyModel.single("MaxPool", input: [1, 1, input, input], attributes: [
            .ints("kernel_shape", [kernel, kernel]), .ints("strides", [stride, stride]), .ints("pads", [pads, pads, pads, pads]),
            .int("ceil_mode", ceil ? 1 : 0),
        ])
        return try ShapeInference.run(model)["y"]?.concreteShape?.last
    }

    @Test func reshapeInfersMinusOneThroughSymbols() throws {
        let model = try TinyModel.single("Reshape", input: [], symbolicInput: [.symbol("N"), .value(64), .value(4)],
                                         constants: ["shape": [0, -1]])
        #expect(try ShapeInference.run(model)["y"]?.shape == [.symbol("N"), .value(256)])
        let flat = try TinyModel.single("Reshape", input: [], symbolicInput: [.symbol("N"), .value(64), .value(4)],
                                        constants: ["shape": [-1, 64]])
        #expect(try ShapeInference.run(flat)["y"]?.shape == [.unknown, .value(64)])
    }

    @Test func sliceFollowsSpecClamping() throws {
        let cases: [([Int], [Int], [Int], Int)] = [
            ([1], [1000], [1], 9),        // end clamped to 10
            ([-3], [Int(Int64.max)], [1], 3),
            ([9], [-1000], [-1], 10),     // backwards to the start
            ([8], [1], [-3], 3),          // 8, 5, 2
            ([0], [10], [Int(Int64.max)], 1),
        ]
        for (starts, ends, steps, expected) in cases {
            let model = try TinyModel.single("Slice", input: [10], constants: ["starts": starts, "ends": ends, "axes": [0], "steps": steps])
            #expect(try ShapeInference.run(model)["y"]?.concreteShape == [expected], "\(starts) \(ends) \(steps)")
        }
    }

    @Test func broadcastMismatchIsAnError() throws {
        let model = try TinyModel.single("Add", input: [2, 3], weights: ["b": [2, 5]])
        #expect(throws: ModelError.self) { try ShapeInference.run(model) }
    }
}
