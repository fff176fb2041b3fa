import Foundation
import LopperTesting
import Testing

@Suite struct GroupsCommandTests {
    @Test func tableShowsGroupsAndReasons() throws {
        let result = try LopperBinary.run(["groups", Fixtures.model("c2f_block")])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.contains("conv_1") && $0.contains("16") && $0.hasSuffix("yes") })
        #expect(lines.contains { $0.contains("conv_5") && $0.contains("no: reaches graph output 'output0'") })
        #expect(lines.suffix(2) == ["5 groups, 4 prunable (56 of 62 channels); 1 residual block, 1 removable",
                                    "coverage: 56 of 56 channels prunable (100.0%), not counting 1 group that defines a model output"])
        #expect(result.stdout.contains("Residual blocks (x + f(x); removing one leaves x):"))
    }

    @Test func coverageCountsRefusalsByReason() throws {
        let result = try LopperBinary.run(["groups", Fixtures.model("residual")])
        #expect(result.status == 0, "\(result.stderr)")
        // conv_1 and conv_3 add to the graph input 'x', and the sum is the output: both define it.
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.suffix(2) == ["3 groups, 2 prunable (16 of 24 channels); 2 residual blocks, 2 removable",
                                    "coverage: 16 of 16 channels prunable (100.0%), not counting 1 group that defines a model output"])
        // The inverted residual adds to the graph input: refused, counted by reason without the names.
        let mobile = try LopperBinary.run(["groups", Fixtures.model("mobilenet_block")])
        #expect(mobile.stdout.hasSuffix("""
            coverage: 48 of 64 channels prunable (75.0%), not counting 1 group that defines a model output
              refused 1× (Add) joins the channels with '…', which no prunable layer produces

            """), "\(mobile.stdout)")
    }

    @Test func jsonListsMembers() throws {
        let result = try LopperBinary.run(["groups", Fixtures.model("transformer_encoder"), "--json"])
        #expect(result.status == 0, "\(result.stderr)")
        let listing = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let groups = try #require(listing["groups"] as? [[String: Any]])
        let blocks = try #require(listing["blocks"] as? [[String: Any]])
        #expect(blocks.count == 2 && blocks.allSatisfy { $0["refusal"] == nil })
        let heads = try #require(groups.first { ($0["channelsPerUnit"] as? Int) == 16 })
        #expect(heads["size"] as? Int == 4)
        #expect((heads["members"] as? [[String: Any]])?.count == 11)
    }

    @Test func badModelFails() throws {
        let result = try LopperBinary.run(["groups", "/nonexistent/model.onnx"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("Error: /nonexistent/model.onnx: cannot open"))
    }
}
