import Foundation
import LopperModel
import LopperTesting
import ONNXProto
import SwiftProtobuf
import Testing

/// Broken models give an error that names the file and the node or field — never a crash.
@Suite struct BadInputTests {
    let directory: URL

    init() throws { directory = try Fixtures.temporaryDirectory() }

    /// Writes `bytes` to a file and returns the error loading it gives.
    private func loadError(_ bytes: Data, name: String = "broken.onnx") throws -> ModelError {
        let path = directory.appendingPathComponent(name).path
        try bytes.write(to: URL(fileURLWithPath: path))
        do {
            _ = try Model.load(path: path)
        } catch let error as ModelError {
            #expect(error.description.hasPrefix(path), "the error names the file: \(error)")
            return error
        }
        Issue.record("\(name) loaded without error")
        return ModelError("no error")
    }

    private func fixtureProto(_ name: String) throws -> Onnx_ModelProto {
        try Onnx_ModelProto(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: Fixtures.model(name))))
    }

    @Test func truncatedFile() throws {
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Fixtures.model("conv_chain")))
        let error = try loadError(bytes.prefix(bytes.count / 2))
        #expect(error.message.contains("not a valid ONNX protobuf"))
    }

    @Test func notAModel() throws {
        let error = try loadError(Data("this is a text file, not a model\n".utf8))
        #expect(error.description.contains("ONNX"))
    }

    @Test func missingFile() throws {
        #expect(throws: ModelError.self) { try Model.load(path: directory.appendingPathComponent("absent.onnx").path) }
    }

    @Test func danglingInputNamesTheNode() throws {
        var proto = try fixtureProto("conv_chain")
        proto.graph.node[2].input[0] = "nobody_makes_this"
        let error = try loadError(try proto.serializedData())
        #expect(error.node == "'\(proto.graph.node[2].name)' (Relu)")
        #expect(error.message.contains("nobody_makes_this"))
    }

    @Test func cycleNamesTheNodes() throws {
        var proto = try fixtureProto("residual")
        // conv_0 now reads relu_0's output, which depends on conv_0.
        proto.graph.node[0].input[0] = proto.graph.node[1].output[0]
        let error = try loadError(try proto.serializedData())
        #expect(error.message.contains("cycle"))
        #expect(error.message.contains("conv_0"))
    }

    @Test func twoProducersOfOneValue() throws {
        var proto = try fixtureProto("residual")
        proto.graph.node[1].output[0] = proto.graph.node[0].output[0]
        let error = try loadError(try proto.serializedData())
        #expect(error.message.contains("also writes"))
    }

    @Test func wrongAttributeTypeNamesNodeAndAttribute() throws {
        var proto = try fixtureProto("conv_chain")
        let index = try #require(proto.graph.node[0].attribute.firstIndex { $0.name == "pads" })
        proto.graph.node[0].attribute[index].type = .floats
        proto.graph.node[0].attribute[index].ints = []
        proto.graph.node[0].attribute[index].floats = [1, 1, 1, 1]
        let model = try Model(serialized: try proto.serializedData())
        #expect {
            _ = try ModelSummary(model)
        } throws: { error in
            let text = "\(error)"
            return text.contains("'conv_0' (Conv)") && text.contains("attribute 'pads'") && text.contains("must be INTS, found FLOATS")
        }
    }

    @Test func shapeMismatchNamesTheNode() throws {
        var proto = try fixtureProto("conv_chain")
        // The second conv's weight now expects 5 input channels, but conv_0 makes 8.
        let weightName = proto.graph.node[3].input[1]
        let index = try #require(proto.graph.initializer.firstIndex { $0.name == weightName })
        var weight = proto.graph.initializer[index]
        weight.dims = [16, 5, 3, 3]
        weight.rawData = Data(count: 16 * 5 * 9 * 4)
        proto.graph.initializer[index] = weight
        let model = try Model(serialized: try proto.serializedData())
        #expect {
            _ = try ModelSummary(model)
        } throws: { error in
            "\(error)".contains("'conv_1' (Conv)") && "\(error)".contains("8 channels")
        }
    }

    @Test func rawDataOfWrongSizeNamesTheInitializer() throws {
        var proto = try fixtureProto("conv_chain")
        proto.graph.initializer[0].rawData = Data(count: 10)
        let error = try loadError(try proto.serializedData())
        #expect(error.field == "initializer '\(proto.graph.initializer[0].name)'")
        #expect(error.message.contains("10 bytes"))
    }

    @Test func negativeDimension() throws {
        var proto = try fixtureProto("conv_chain")
        proto.graph.initializer[0].dims[0] = -3
        let error = try loadError(try proto.serializedData())
        #expect(error.message.contains("negative dimension"))
    }

    @Test func externalPathEscapingTheFolder() throws {
        let error: ModelError
        do {
            _ = try Model.load(path: Fixtures.model("escape_external"))
            Issue.record("escape_external loaded")
            return
        } catch let e as ModelError { error = e }
        #expect(error.message.contains("'../../etc/passwd' escapes the model's folder"))
        #expect(error.field?.hasPrefix("initializer") == true)
    }

    @Test func externalPathsThatLeaveTheFolder() throws {
        let outside = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: outside) }
        try Data(count: 4096).write(to: outside.appendingPathComponent("secret.bin"))
        try FileManager.default.createSymbolicLink(atPath: directory.appendingPathComponent("link.bin").path,
                                                   withDestinationPath: outside.appendingPathComponent("secret.bin").path)
        for location in ["/etc/passwd", "sub/../../x.bin", "link.bin"] {
            var proto = try fixtureProto("conv_chain")
            proto.graph.initializer[0] = externalTensor(proto.graph.initializer[0], location: location)
            let error = try loadError(try proto.serializedData())
            #expect(error.message.contains(location), "\(error)")
        }
    }

    @Test func missingAndShortExternalFiles() throws {
        var proto = try fixtureProto("conv_chain")
        let first = proto.graph.initializer[0]
        proto.graph.initializer[0] = externalTensor(first, location: "weights.bin")
        let missing = try loadError(try proto.serializedData())
        #expect(missing.message.contains("weights.bin"))

        try Data(count: 17).write(to: directory.appendingPathComponent("weights.bin"))
        let short = try loadError(try proto.serializedData())
        #expect(short.message.contains("too short"), "\(short)")
        #expect(short.field == "initializer '\(first.name)'")
    }

    private func externalTensor(_ tensor: Onnx_TensorProto, location: String) -> Onnx_TensorProto {
        var external = tensor
        external.clearRawData()
        external.floatData = []
        external.dataLocation = .external
        let length = tensor.dims.reduce(1, *) * 4
        external.externalData = [("location", location), ("offset", "0"), ("length", String(length))].map { key, value in
            Onnx_StringStringEntryProto.with { $0.key = key; $0.value = value }
        }
        return external
    }
}
