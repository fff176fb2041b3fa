import Foundation
import LopperModel
import LopperTesting
import Testing

@Suite struct NumPyIntegrityTests {
    /// A stored member whose bytes no longer match its CRC-32 is refused, as numpy refuses it.
    @Test func aMemberWithABadChecksumIsRefused() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("a.npz").path
        try NumPy.writeArchive(["x": try TensorData(floats: [1, 2, 3, 4], shape: [4])], to: path)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        // The last float of the (uncompressed) member: 4.0 is 00 00 80 40.
        let four: [UInt8] = [0x00, 0x00, 0x80, 0x40]
        let at = try #require((0...(bytes.count - 4)).first { Array(bytes[$0..<($0 + 4)]) == four })
        bytes[at + 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect { try NumPy.readArchive(path: path) } throws: {
            "\($0)".hasPrefix("\(path): member 'x.npy'") && "\($0)".contains("CRC-32")
        }
    }
}
