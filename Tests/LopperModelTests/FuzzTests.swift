import Foundation
import LopperModel
import LopperTesting
import Testing

/// Feeds mutated model files (bit flips, byte changes, truncations) through loading, shape
/// inference and statistics. Every outcome must be a model or a `ModelError`; a crash fails
/// the whole test run.
@Suite struct FuzzTests {
    static let mutationsPerFixture = 150

    @Test(arguments: Fixtures.runnableFixtures)
    func mutatedModelsNeverCrash(name: String) throws {
        let original = try Data(contentsOf: URL(fileURLWithPath: Fixtures.model(name)))
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var random = SeededGenerator(seed: UInt64(name.utf8.reduce(0) { $0 &* 31 &+ Int($1) }.magnitude))
        var outcomes = (loaded: 0, rejected: 0)
        for round in 0..<Self.mutationsPerFixture {
            var bytes = [UInt8](original)
            switch round % 3 {
            case 0:
                for _ in 0..<Int.random(in: 1...8, using: &random) {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= 1 << UInt8.random(in: 0..<8, using: &random)
                }
            case 1:
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
            default:
                bytes.removeLast(Int.random(in: 1..<bytes.count, using: &random))
            }
            let path = directory.appendingPathComponent("mutant-\(round).onnx").path
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                let model = try Model.load(path: path)
                _ = try ModelSummary(model)
                _ = try model.serialized()
                outcomes.loaded += 1
            } catch is ModelError {
                outcomes.rejected += 1
            }
        }
        #expect(outcomes.loaded + outcomes.rejected == Self.mutationsPerFixture)
        #expect(outcomes.rejected > 0, "mutations should break some models")
    }
}
