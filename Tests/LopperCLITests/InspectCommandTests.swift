import Foundation
import LopperTesting
import Testing

@Suite struct InspectCommandTests {
    @Test func tableListsLayersAndTotals() throws {
        let result = try LopperBinary.run(["inspect", Fixtures.model("conv_chain")])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let conv = try #require(lines.first { $0.contains("conv_1") })
        #expect(conv.contains("float32[1,8,32,32]") && conv.contains("float32[1,16,16,16]"))
        #expect(conv.contains("1,168") && conv.contains("294.91K"))
        #expect(conv.hasSuffix("unstructured 2:4 4:8 channel"))
        #expect(lines.contains("params      4,042"))
        #expect(lines.contains("MACs        1,106,080 (1.11M) with x[0]=1"))
        #expect(lines.contains("unsupported none"))
    }

    @Test func jsonMatchesTheTable() throws {
        let result = try LopperBinary.run(["inspect", Fixtures.model("c2f_block"), "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(json["params"] as? Int == 2_394)
        #expect(json["macs"] as? Int == 2_670_592)
        let layers = try #require(json["layers"] as? [[String: Any]])
        #expect(layers.count == 26)
        let reshape = try #require(layers.first { $0["opType"] as? String == "Reshape" })
        #expect(reshape["outputShapes"] as? [String] == ["float32[1,6,4096]"])
    }

    @Test func unsupportedOperatorsAreNamed() throws {
        let result = try LopperBinary.run(["inspect", Fixtures.model("unsupported_ops")])
        #expect(result.status == 0)
        #expect(result.stdout.contains("unsupported 2 nodes:\n  Unique: unique_0\n  com.example.MyOp: myop_0"))
    }

    @Test func symbolicSizesNeedInputShape() throws {
        let without = try LopperBinary.run(["inspect", Fixtures.model("transformer_encoder")])
        #expect(without.stdout.contains("8 layers have unknown MACs: give their inputs' sizes with --input-shape"))
        let with = try LopperBinary.run(["inspect", Fixtures.model("transformer_encoder"), "--input-shape", "x=1x16x64"])
        #expect(with.stdout.contains("MACs        819,200 (819.20K)\n"))
    }

    @Test func badModelFailsNamingTheFile() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("garbage.onnx").path
        try Data((0..<200).map { UInt8($0 % 7 == 0 ? 0xFF : $0) }).write(to: URL(fileURLWithPath: path))
        let result = try LopperBinary.run(["inspect", path])
        #expect(result.status != 0)
        #expect(result.stderr.contains("Error: \(path): is not a valid ONNX protobuf"))
        #expect(result.stdout.isEmpty)
    }

    @Test func badOptionsAreValidated() throws {
        let result = try LopperBinary.run(["inspect", Fixtures.model("conv_chain"), "--input-shape", "x=1xbad"])
        #expect(result.status == 64)
        #expect(result.stderr.contains("--input-shape 'x=1xbad' must look like name=1x3x224x224"))
        let unknown = try LopperBinary.run(["inspect", Fixtures.model("conv_chain"), "--input-shape", "y=1x3x8x8"])
        #expect(unknown.status != 0)
        #expect(unknown.stderr.contains("'y', which is not a graph input (inputs: x)"))
    }

    @Test(.enabled(if: Fixtures.hasRealModels)) func realDetector() throws {
        let result = try LopperBinary.run(["inspect", Fixtures.ocrDetector, "--input-shape", "x=1x3x640x640"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("params      1,171,841"))
        #expect(result.stdout.contains("MACs        2,301,935,744 (2.30G)"))
    }
}
