import Foundation
import LopperModel
import LopperPruning
import LopperRuntime
import LopperTesting
import ONNXProto
import Testing

/// Mutated model files through every stage a user reaches them with: load, inspect
/// (`ModelSummary`), groups (`DependencyAnalysis`) and run (`Executor`, with a small tensor
/// limit). Every outcome must be a result or a `ModelError`; a crash ends the test run, a hang
/// its time. Deterministic seeds; counts printed. See Docs/reliability.md.
@Suite struct ModelFuzzTests {
    static let mutationsPerSeed = 1300
    /// No fuzzed run allocates more than this per tensor.
    static let tensorLimit = 16 << 20

    enum Mutation: CaseIterable {
        case bitFlips, byteSets, truncation, protobufField, hugeDimensions
    }

    /// Where each case stopped.
    struct Outcome: Sendable {
        var rejectedAtLoad = 0, rejectedAtSummary = 0, rejectedAtGroups = 0, rejectedAtRun = 0, ran = 0, skippedRun = 0
        var total: Int { rejectedAtLoad + rejectedAtSummary + rejectedAtGroups + rejectedAtRun + ran + skippedRun }
    }

    /// The committed runnable fixtures (but the transformers and the detector, whose 1300 runs
    /// each would take minutes) and one-node models of the operators that allocate by a computed shape.
    static let seeds: [String] = Fixtures.runnableFixtures.filter { !["transformer_encoder", "transformer_shape_computed", "yolov8_tiny"].contains($0) }
        + ["tiny-generators", "tiny-layout"]

    static func seedBytes(_ name: String) throws -> Data {
        switch name {
        case "tiny-generators":
            var builder = ModelBuilder()
            builder.input("x", [2, 3])
            builder.constant("shape", ints: [2, 3], shape: [2])
            builder.constant("repeats", ints: [2, 1], shape: [2])
            builder.node("ConstantOfShape", ["shape"], ["zeros"], name: "zeros")
            builder.node("Add", ["x", "zeros"], ["sum"], name: "add")
            builder.node("Expand", ["sum", "shape"], ["expanded"], name: "expand")
            builder.node("Tile", ["expanded", "repeats"], ["y"], name: "tile")
            builder.output("y")
            return try builder.model().serialized()
        case "tiny-layout":
            var builder = ModelBuilder()
            builder.input("x", [1, 2, 4, 4])
            builder.constant("w", floats: (0..<18).map { Float($0) / 10 }, shape: [1, 2, 3, 3])
            builder.constant("flat", ints: [1, -1], shape: [2])
            builder.node("Conv", ["x", "w"], ["conv"], name: "conv", ints: ["group": 1])
            builder.node("Relu", ["conv"], ["relu"], name: "relu")
            builder.node("Reshape", ["relu", "flat"], ["flat_out"], name: "reshape")
            builder.node("Softmax", ["flat_out"], ["y"], name: "softmax", ints: ["axis": 1])
            builder.output("y")
            return try builder.model().serialized()
        default:
            return try Data(contentsOf: URL(fileURLWithPath: Fixtures.model(name)))
        }
    }

    @Test(arguments: seeds)
    func mutatedModelsNeverCrash(seed name: String) async throws {
        // Seconds of CPU: on a thread of its own, not one of the test runner's few shared ones.
        let outcome = try await offThePool { try Self.fuzz(seed: name) }
        print("model fuzz \(name): \(outcome.total) cases — rejected at load \(outcome.rejectedAtLoad), summary \(outcome.rejectedAtSummary), groups \(outcome.rejectedAtGroups), run \(outcome.rejectedAtRun); ran \(outcome.ran), run skipped (inputs too large) \(outcome.skippedRun)")
        #expect(outcome.total == Self.mutationsPerSeed)
        #expect(outcome.rejectedAtLoad > 0 && outcome.ran > 0, "mutations should both break and keep some models")
    }

    static func fuzz(seed name: String) throws -> Outcome {
        let original = try Self.seedBytes(name)
        var random = SeededGenerator(seed: UInt64(name.utf8.reduce(0) { $0 &* 31 &+ Int($1) }.magnitude))
        var outcome = Outcome()
        for round in 0..<Self.mutationsPerSeed {
            let kind = Mutation.allCases[round % Mutation.allCases.count]
            let bytes = Self.mutate(original, kind, using: &random)
            // LOPPER_FUZZ_DUMP=folder keeps the case about to run, to reproduce a crash with.
            if let dump = ProcessInfo.processInfo.environment["LOPPER_FUZZ_DUMP"] {
                try bytes.write(to: URL(fileURLWithPath: dump).appendingPathComponent("\(name)-last.onnx"))
            }
            try Self.exercise(bytes, into: &outcome)
        }
        return outcome
    }

    /// The inputs issue 10 found, kept as fixed cases: each must be refused with an error.
    @Test func issueTenRegressionInputsAreRefused() throws {
        func model(_ op: String, _ constant: [Int64], input: Bool = true) throws -> Data {
            var builder = ModelBuilder()
            if input { builder.input("x", [1, 4]) }
            builder.constant("c", ints: constant, shape: [constant.count])
            builder.node(op, (input ? ["x"] : []) + ["c"], ["y"], name: "regression")
            builder.output("y")
            return try builder.model().serialized()
        }
        var huge = ModelBuilder()
        huge.input("x", [1 << 40, 4])
        huge.node("Relu", ["x"], ["y"])
        huge.output("y")
        let cases: [Data] = [
            try model("ConstantOfShape", [1 << 20, 1 << 20], input: false), try model("Expand", [1 << 40, 4]),
            try model("Tile", [1 << 40, 1]), try model("Expand", [1 << 40, 1 << 40, 4]), try model("Tile", [1 << 62, 4]),
            try model("Pad", [0, 1 << 62, 0, 1 << 62]),
        ]
        for bytes in cases {
            var outcome = Outcome()
            try Self.exercise(bytes, into: &outcome)
            #expect(outcome.ran == 0 && outcome.skippedRun == 0 && outcome.total == 1, "\(outcome)")
        }
        // A declared input of 2^40 × 4 floats: the executor is never handed it; sizing it is refused.
        #expect(throws: ModelError.self) { try AllocationLimit.check(.float32, shape: [1 << 40, 4]) }
        var outcome = Outcome()
        try Self.exercise(try huge.model().serialized(), into: &outcome)
        #expect(outcome.skippedRun == 1)
    }

    /// Runs one case as far as it goes.
    static func exercise(_ bytes: Data, into outcome: inout Outcome) throws {
        let model: Model
        do { model = try Model(serialized: bytes) } catch is ModelError { outcome.rejectedAtLoad += 1; return }
        do { _ = try ModelSummary(model) } catch is ModelError { outcome.rejectedAtSummary += 1; return }
        do {
            _ = try DependencyAnalysis.groups(of: model)
            _ = try ResidualBlocks.find(in: model)
        } catch is ModelError { outcome.rejectedAtGroups += 1; return }
        do {
            let executor = try Executor(model: model, options: ExecutorOptions(threads: 1, maxTensorBytes: tensorLimit))
            guard let feeds = try inputs(for: executor) else { outcome.skippedRun += 1; return }
            _ = try executor.run(feeds)
            outcome.ran += 1
        } catch is ModelError {
            outcome.rejectedAtRun += 1
        }
    }

    /// Small deterministic inputs of the declared shapes (symbolic sizes 1), or nil when they
    /// would be large.
    static func inputs(for executor: Executor) throws -> [String: Tensor]? {
        var feeds: [String: Tensor] = [:]
        for input in executor.inputs {
            let shape = (input.type?.shape ?? []).map { $0.value ?? 1 }
            guard shape.allSatisfy({ $0 >= 0 }), (try? TensorData.elementCount(shape)).map({ $0 <= 1 << 16 }) == true else { return nil }
            let count = shape.reduce(1, *)
            let values = TensorData(floats: (0..<count).map { Float($0 % 7) / 7 - 0.5 }, shape: shape)
            feeds[input.name] = try Tensor(values).converted(to: input.type?.elementType ?? .float32)
        }
        return feeds
    }

    static let hugeDimensions: [Int64] = [0, -1, -7, 1 << 31, 1 << 40, 1 << 62, Int64.max]

    static func mutate(_ original: Data, _ kind: Mutation, using random: inout SeededGenerator) -> Data {
        var bytes = [UInt8](original)
        switch kind {
        case .bitFlips:
            for _ in 0..<Int.random(in: 1...8, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            }
        case .byteSets:
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
        case .truncation:
            bytes.removeLast(Int.random(in: 1..<bytes.count, using: &random))
        case .protobufField, .hugeDimensions:
            guard var proto = try? Onnx_ModelProto(serializedBytes: original) else { return original }
            if kind == .hugeDimensions { mutateDimensions(&proto, using: &random) } else { mutateField(&proto, using: &random) }
            return (try? proto.serializedData()) ?? original
        }
        return Data(bytes)
    }

    /// Sets a dimension of an input, an initializer or an int64 constant (a shape, repeats, pads) to an extreme.
    static func mutateDimensions(_ proto: inout Onnx_ModelProto, using random: inout SeededGenerator) {
        let value = hugeDimensions.randomElement(using: &random)!
        switch Int.random(in: 0..<3, using: &random) {
        case 0 where !proto.graph.input.isEmpty:
            let i = Int.random(in: 0..<proto.graph.input.count, using: &random)
            var tensor = proto.graph.input[i].type.tensorType
            guard !tensor.shape.dim.isEmpty else { return }
            tensor.shape.dim[Int.random(in: 0..<tensor.shape.dim.count, using: &random)].dimValue = value
            proto.graph.input[i].type.tensorType = tensor
        case 1 where !proto.graph.initializer.isEmpty:
            let i = Int.random(in: 0..<proto.graph.initializer.count, using: &random)
            guard !proto.graph.initializer[i].dims.isEmpty else { return }
            proto.graph.initializer[i].dims[Int.random(in: 0..<proto.graph.initializer[i].dims.count, using: &random)] = value
        default:
            guard let i = proto.graph.initializer.indices.filter({ proto.graph.initializer[$0].dataType == 7 }).randomElement(using: &random),
                  !proto.graph.initializer[i].int64Data.isEmpty else { return }
            let count = proto.graph.initializer[i].int64Data.count
            proto.graph.initializer[i].int64Data[Int.random(in: 0..<count, using: &random)] = value
        }
    }

    static let operators = ["Conv", "Relu", "Add", "MatMul", "Gemm", "Reshape", "Transpose", "Concat", "Split", "Expand", "Tile",
                            "ConstantOfShape", "Pad", "Resize", "Slice", "Gather", "Softmax", "BatchNormalization", "MaxPool", "Unknown"]

    /// Changes one field: an operator, an input name, an attribute value, a data type, a tensor's
    /// data, the opset.
    static func mutateField(_ proto: inout Onnx_ModelProto, using random: inout SeededGenerator) {
        let nodes = proto.graph.node.count
        switch Int.random(in: 0..<6, using: &random) {
        case 0 where nodes > 0:
            proto.graph.node[Int.random(in: 0..<nodes, using: &random)].opType = operators.randomElement(using: &random)!
        case 1 where nodes > 0:
            let i = Int.random(in: 0..<nodes, using: &random)
            let names = proto.graph.node.flatMap(\.output) + proto.graph.input.map(\.name) + ["", "missing"]
            if proto.graph.node[i].input.isEmpty || Bool.random(using: &random) {
                proto.graph.node[i].input.append(names.randomElement(using: &random)!)
            } else {
                proto.graph.node[i].input[Int.random(in: 0..<proto.graph.node[i].input.count, using: &random)] = names.randomElement(using: &random)!
            }
        case 2 where nodes > 0:
            let i = Int.random(in: 0..<nodes, using: &random)
            var attribute = Onnx_AttributeProto()
            attribute.name = ["axis", "group", "perm", "pads", "strides", "kernel_shape", "dilations", "axes", "keepdims"].randomElement(using: &random)!
            if Bool.random(using: &random) {
                attribute.type = .int
                attribute.i = [Int64(-3), 0, 1, 2, 7, 1 << 40].randomElement(using: &random)!
            } else {
                attribute.type = .ints
                attribute.ints = (0..<Int.random(in: 0...5, using: &random)).map { _ in Int64.random(in: -4...9, using: &random) }
            }
            proto.graph.node[i].attribute.removeAll { $0.name == attribute.name }
            proto.graph.node[i].attribute.append(attribute)
        case 3 where !proto.graph.initializer.isEmpty:
            let i = Int.random(in: 0..<proto.graph.initializer.count, using: &random)
            proto.graph.initializer[i].dataType = Int32.random(in: 0...20, using: &random)
        case 4 where !proto.graph.initializer.isEmpty:
            let i = Int.random(in: 0..<proto.graph.initializer.count, using: &random)
            let raw = proto.graph.initializer[i].rawData
            proto.graph.initializer[i].rawData = raw.prefix(Int.random(in: 0...raw.count, using: &random))
            if raw.isEmpty { proto.graph.initializer[i].floatData.removeLast(min(1, proto.graph.initializer[i].floatData.count)) }
        default:
            if !proto.opsetImport.isEmpty { proto.opsetImport[0].version = Int64.random(in: 1...30, using: &random) }
        }
    }
}
