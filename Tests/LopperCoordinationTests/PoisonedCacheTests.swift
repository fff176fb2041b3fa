import Crypto
import Foundation
import LopperCoordination
import LopperTesting
import Testing

@Suite struct PoisonedCacheTests {
    /// A cached blob replaced by other bytes of the same size is fetched again, not used.
    @Test func aReplacedBlobIsFetchedAgain() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let bytes = [UInt8]((0..<5000).map { UInt8($0 % 251) })
        let blob = BlobCacheTests.reference(bytes)
        let cache = try BlobCache(directory: directory.path)
        let path = try cache.path(for: blob.sha256)
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try Data(repeating: 0x66, count: bytes.count).write(to: URL(fileURLWithPath: path))
        #expect(try !cache.contains(blob))
        let (got, transferred) = try await cache.obtain(blob, chunkBytes: 2048, fetch: BlobCacheTests.server(bytes, sha256: blob.sha256))
        #expect(got == path && transferred == 5000)
        #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: path))) == bytes)
    }
}
