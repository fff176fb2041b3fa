import Foundation
import LopperModel
import LopperTesting
import ONNXProto
import SwiftProtobuf
import Testing

@Suite struct LoadSaveTests {
    @Test func loadsGraphStructure() throws {
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        let graph = model.graph
        #expect(graph.nodes.map(\.opType) == ["Conv", "BatchNormalization", "Relu", "Conv", "BatchNormalization", "Relu",
                                              "Conv", "BatchNormalization", "Relu", "GlobalAveragePool", "Flatten", "Gemm"])
        #expect(graph.feedInputs.map(\.name) == ["x"])
        #expect(graph.feedInputs[0].type?.shape == [.symbol("N"), .value(3), .value(32), .value(32)])
        #expect(model.opset() == 13)
        let conv = try #require(graph.producer(of: graph.nodes[0].outputs[0]))
        #expect(conv.opType == "Conv")
        #expect(graph.consumers[graph.nodes[0].outputs[0]]?.map { graph.nodes[$0].opType } == ["BatchNormalization"])
        let weight = try #require(graph.initializers[graph.nodes[0].inputs[1]])
        #expect(weight.shape == [8, 3, 3, 3])
        #expect(weight.elementType == .float32)
    }

    @Test func constantNodesAreWeights() throws {
        let model = try Model.load(path: Fixtures.model("paddle_constants"))
        #expect(model.graph.initializers.isEmpty)
        let conv = try #require(model.graph.nodes.first { $0.opType == "Conv" })
        let weight = try #require(try model.graph.constant(conv.inputs[1]))
        #expect(weight.shape.count == 4)
        #expect(try ModelSummary(model).params == 426)
    }

    @Test func largeMetadataSurvivesRewrite() throws {
        let model = try Model.load(path: Fixtures.model("paddle_constants"))
        let dictionary = try #require(model.metadata.first { $0.key == "character" }?.value)
        #expect(dictionary.count == 6_623)
        let reloaded = try Model(serialized: try model.serialized())
        #expect(reloaded.metadata.map(\.key) == model.metadata.map(\.key))
        #expect(reloaded.metadata.map(\.value) == model.metadata.map(\.value))
    }

    @Test func unknownFieldsSurviveRoundTrip() throws {
        var proto = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: Fixtures.model("residual"))))
        // Field 999, wire type 2 (length-delimited): a field from a future ONNX version.
        let unknown = Data([0xBA, 0x3E, 6]) + Data("future".utf8)
        var nodeBytes: Data = try proto.graph.node[0].serializedData()
        nodeBytes.append(unknown)
        proto.graph.node[0] = try Onnx_NodeProto(serializedBytes: nodeBytes)
        var modelBytes: Data = try proto.serializedData()
        modelBytes.append(unknown)

        let saved = try Model(serialized: modelBytes).serialized()
        let reparsed = try Onnx_ModelProto(serializedBytes: saved)
        #expect(reparsed.unknownFields.data == unknown)
        #expect(reparsed.graph.node[0].unknownFields.data == unknown)
    }

    @Test(.enabled(if: Reference.isAvailable), arguments: Fixtures.runnableFixtures)
    func savedFixturePassesCheckerAndMatchesRuntime(name: String) throws {
        try expectFaithfulRewrite(of: Fixtures.model(name))
    }

    @Test(.enabled(if: Reference.isAvailable && Fixtures.hasRealModels),
          arguments: [Fixtures.ocrDetector, Fixtures.ocrClassifier, Fixtures.digitsClassifier])
    func savedRealModelPassesCheckerAndMatchesRuntime(path: String) throws {
        try expectFaithfulRewrite(of: path)
    }

    /// Load, save, then: the checker passes and ONNX Runtime gives bit-identical outputs.
    private func expectFaithfulRewrite(of path: String) throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let output = directory.appendingPathComponent("saved.onnx").path
        try Model.load(path: path).save(to: output)
        #expect(try Reference.checkerError(output) == nil)
        let comparison = try Reference.call(["compare", path, output] + Fixtures.shapeArguments(for: path))
        #expect(comparison["identical"] as? Bool == true, "\(comparison)")
    }

    @Test func externalDataLoadsLikeInlineWeights() throws {
        let inline = try Model.load(path: Fixtures.model("conv_chain"))
        let external = try Model.load(path: Fixtures.root.appendingPathComponent("models/external/external_weights.onnx").path)
        #expect(Array(external.graph.initializers.keys) == Array(inline.graph.initializers.keys))
        for (name, tensor) in inline.graph.initializers {
            #expect(external.graph.initializers[name]?.floats() == tensor.floats(), "\(name)")
        }
    }

    @Test func externalDataRoundTrip() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let model = try Model.load(path: Fixtures.model("conv_chain"))
        let path = directory.appendingPathComponent("model.onnx").path
        try model.save(to: path, externalData: .sideFile(fileName: "model.weights", threshold: 64))

        let proto = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: path)))
        let externalNames = proto.graph.initializer.filter { $0.dataLocation == .external }.map(\.name)
        #expect(externalNames.count == model.graph.initializers.values.filter { $0.bytes.count >= 64 }.count)
        #expect(!externalNames.isEmpty)
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("model.weights").path))

        // Saving over the model it was loaded from, whose side file is still mapped.
        let reloaded = try Model.load(path: path)
        try reloaded.save(to: path, externalData: .sideFile(fileName: "model.weights", threshold: 64))
        let again = try Model.load(path: path)
        for (name, tensor) in model.graph.initializers {
            #expect(again.graph.initializers[name]?.floats() == tensor.floats(), "\(name)")
        }
        if Reference.isAvailable {
            #expect(try Reference.checkerError(path) == nil)
            #expect(try Reference.call(["compare", Fixtures.model("conv_chain"), path])["identical"] as? Bool == true)
        }
    }

    @Test func halfPrecisionAndTypedFieldsDecode() throws {
        var tensor = Onnx_TensorProto()
        tensor.name = "h"
        tensor.dataType = ElementType.float16.rawValue
        tensor.dims = [4]
        // 1.0, -2.0, 0.5, 65504 (largest half) as IEEE 754 half bit patterns in int32_data.
        tensor.int32Data = [0x3C00, 0xC000, 0x3800, 0x7BFF]
        var model = try Onnx_ModelProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: Fixtures.model("residual"))))
        model.graph.initializer.append(tensor)
        let loaded = try Model(serialized: try model.serializedData())
        #expect(loaded.graph.initializers["h"]?.floats() == [1, -2, 0.5, 65504])
    }
}
