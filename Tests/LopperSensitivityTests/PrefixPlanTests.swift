import Foundation
import LopperModel
@testable import LopperSensitivity
import LopperTesting
import Testing

struct PrefixPlanTests {
    /// An If after the first touched layer whose branch reads a prefix value: that value is cut
    /// (fed to the suffix) although no node lists it as an input.
    @Test func valuesReadByBodiesAreCut() throws {
        var then = ModelBuilder()
        then.node("Identity", ["early"], ["kept"], name: "inner")
        then.output("kept")
        var otherwise = ModelBuilder()
        otherwise.node("Neg", ["early"], ["flipped"], name: "inner_neg")
        otherwise.output("flipped")
        var b = ModelBuilder()
        b.input("x", [1, 4])
        b.constant("w", floats: Array(repeating: 0.5, count: 16), shape: [4, 4])
        b.node("Relu", ["x"], ["early"], name: "relu")
        b.node("MatMul", ["x", "w"], ["late"], name: "touched")
        b.node("ReduceMax", ["late"], ["m"], name: "reduce", ints: ["keepdims": 0])
        b.node("Cast", ["m"], ["cond"], name: "cast", ints: ["to": 9])
        b.node("If", ["cond"], ["y"], name: "branch", subgraphs: ["then_branch": then, "else_branch": otherwise])
        b.output("y")
        let model = try b.model()
        let plan = PrefixPlan(graph: model.graph, touched: ["touched"])
        #expect(plan.cut == ["x", "early"])
    }
}
