import Foundation
import LopperTesting
import Testing

@Suite struct GroupsCommandTests {
    @Test func tableShowsGroupsAndReasons() throws {
        let result = try LopperBinary.run(["groups", Fixtures.model("c2f_block")])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.contains("conv_1") && $0.contains("16") && $0.hasSuffix("yes") })
        #expect(lines.contains { $0.contains("conv_5") && $0.contains("no: 'reshape_0' (Reshape) has a computed target shape") })
        #expect(lines.last == "5 groups, 4 prunable (56 of 62 channels); 1 residual block, 1 removable")
        #expect(result.stdout.contains("Residual blocks (x + f(x); removing one leaves x):"))
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
