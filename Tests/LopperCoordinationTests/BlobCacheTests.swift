import Crypto
import Foundation
@testable import LopperCoordination
import LopperProtocol
import LopperTesting
import Testing
import LopperModel

@Suite struct BlobCacheTests {
    let directory: URL
    init() throws { directory = try Fixtures.temporaryDirectory() }

    static func reference(_ bytes: [UInt8], role: String = "model") -> Lopper_Wire_BlobRef {
        var blob = Lopper_Wire_BlobRef()
        blob.sha256 = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
        blob.size = UInt64(bytes.count)
        blob.role = role
        return blob
    }

    /// Serves `bytes` in chunks, optionally corrupting one byte.
    static func server(_ bytes: [UInt8], sha256: String, corruptAt: Int? = nil) -> (UInt64, Int) async throws -> Lopper_Wire_BlobChunk {
        { offset, length in
            var chunk = Lopper_Wire_BlobChunk()
            chunk.sha256 = sha256
            chunk.offset = offset
            var data = Array(bytes[Int(offset)..<min(bytes.count, Int(offset) + length)])
            if let corruptAt, (Int(offset)..<Int(offset) + data.count).contains(corruptAt) { data[corruptAt - Int(offset)] ^= 0xFF }
            chunk.data = Data(data)
            chunk.totalSize = UInt64(bytes.count)
            return chunk
        }
    }

    @Test func fetchesInChunksVerifiesAndThenSkips() async throws {
        var random = SeededGenerator(seed: 5)
        let bytes = (0..<10_000).map { _ in UInt8.random(in: 0...255, using: &random) }
        let blob = Self.reference(bytes)
        let cache = try BlobCache(directory: directory.path)
        let (path, transferred) = try await cache.obtain(blob, chunkBytes: 3000, fetch: Self.server(bytes, sha256: blob.sha256))
        #expect(transferred == 10_000)
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: path))) == bytes)
        #expect(path.hasSuffix("/blobs/\(blob.sha256.prefix(2))/\(blob.sha256)"))
        // Present: nothing is fetched (a fetch would fail the test).
        let again = try await cache.obtain(blob, chunkBytes: 3000) { _, _ in
            Issue.record("fetched a blob that was already cached")
            return Lopper_Wire_BlobChunk()
        }
        #expect(again.transferred == 0 && again.path == path)
    }

    @Test func corruptDataIsDiscarded() async throws {
        let bytes = [UInt8](repeating: 42, count: 5000)
        let blob = Self.reference(bytes)
        let cache = try BlobCache(directory: directory.path)
        await #expect { _ = try await cache.obtain(blob, chunkBytes: 1024, fetch: Self.server(bytes, sha256: blob.sha256, corruptAt: 4321)) }
            throws: { "\($0)".contains("hashes to") && "\($0)".contains("discarded") }
        #expect(!(try cache.contains(blob)))
        let leftovers = try FileManager.default.subpathsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".part") }
        #expect(leftovers.isEmpty)
        // A chunk at the wrong offset is refused before anything is written.
        await #expect(throws: BlobCache.Failure.self) {
            _ = try await cache.obtain(blob, chunkBytes: 1024) { _, _ in
                var chunk = Lopper_Wire_BlobChunk()
                chunk.sha256 = blob.sha256
                chunk.offset = 7
                chunk.data = Data([1])
                return chunk
            }
        }
    }

    @Test func onlyDigestsBecomeFileNames() throws {
        let cache = try BlobCache(directory: directory.path)
        for hostile in ["../../etc/passwd", String(repeating: "A", count: 64), "/tmp/x", String(repeating: "0", count: 63) + "/"] {
            #expect(throws: BlobCache.Failure.self) { try cache.path(for: hostile) }
        }
        #expect(try cache.path(for: String(repeating: "ab", count: 32)).hasPrefix(directory.path))
    }

    @Test func modelDataLocationsStayInsideTheModelsFolder() throws {
        for good in ["weights.bin", "data/part-1.bin"] { #expect(try Worker.checkedLocation(good) == good) }
        for bad in ["", "/etc/passwd", "../x.bin", "data/../../x", "a//b", "./w.bin"] {
            #expect(throws: (any Error).self) { try Worker.checkedLocation(bad) }
        }
    }
}
