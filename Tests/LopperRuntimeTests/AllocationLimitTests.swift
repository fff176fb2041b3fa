import Foundation
import LopperModel
import LopperRuntime
import LopperTesting
import Testing

/// Values the machine cannot hold are errors naming the node, not an aborted process.
@Suite struct AllocationLimitTests {
    /// A model computing `op` of input `x` [1, 4] (when `withInput`) and an int64 constant.
    static func model(_ op: String, constant: [Int64], withInput: Bool = true) throws -> Model {
        var builder = ModelBuilder()
        if withInput { builder.input("x", [1, 4]) }
        builder.constant("c", ints: constant, shape: [constant.count])
        builder.node(op, (withInput ? ["x"] : []) + ["c"], ["y"], name: "huge")
        builder.output("y")
        return try builder.model()
    }

    static let cases: [(String, [Int64], Bool)] = [
        ("ConstantOfShape", [1 << 20, 1 << 20], false),  // 4 TiB of float32
        ("Expand", [1 << 40, 4], true),
        ("Tile", [1 << 40, 1], true),
        ("Expand", [1 << 40, 1 << 40, 4], true),          // more bytes than Int holds
        ("Tile", [1 << 62, 4], true),
    ]

    @Test(arguments: 0..<cases.count)
    func terabyteValuesAreRefusedNamingTheNode(_ index: Int) throws {
        let (op, constant, withInput) = Self.cases[index]
        let model = try Self.model(op, constant: constant, withInput: withInput)
        let error = #expect(throws: ModelError.self) {
            let executor = try Executor(model: model, options: ExecutorOptions(threads: 1))
            _ = try executor.run(withInput ? ["x": Tensor(floats: [1, 2, 3, 4], shape: [1, 4])] : [:])
        }
        let text = error.map { "\($0)" } ?? ""
        #expect(text.contains("huge") && text.contains(op), "\(text)")
        #expect(text.contains("LOPPER_MAX_TENSOR_BYTES") || text.contains("64-bit") || text.contains("Int.max"), "\(text)")
    }

    @Test func theLimitItselfIsSane() throws {
        #expect(AllocationLimit.bytes >= 1 << 20)
        #expect(try AllocationLimit.check(.float32, shape: [1024, 1024]) == 4 << 20)
        #expect(throws: ModelError.self) { try AllocationLimit.check(.float32, shape: [Int.max / 2, 3]) }
    }
}
