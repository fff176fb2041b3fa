import Crypto
import Foundation
import LopperProtocol
import LopperSensitivity

/// Files fetched from a coordinator, stored under a path derived from their SHA-256 only
/// (`<dir>/blobs/ab/abcdef…`), written to a temporary name, verified, then renamed into place:
/// whatever sits at a blob's path was verified, and is checked again before it is used (a
/// damaged or replaced file is fetched anew). Workers may share the directory.
public struct BlobCache: Sendable {
    public let directory: URL

    public init(directory: String) throws {
        self.directory = URL(fileURLWithPath: directory).appendingPathComponent("blobs")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
    }

    public enum Failure: Error, CustomStringConvertible {
        case badHash(String)
        case mismatch(role: String, expected: String, got: String)
        case badChunk(String)

        public var description: String {
            switch self {
            case .badHash(let text): return "'\(text.prefix(80))' is not a SHA-256 digest; refusing to use it as a file name"
            case .mismatch(let role, let expected, let got): return "the \(role) received hashes to \(got), not \(expected); discarded"
            case .badChunk(let why): return "bad blob chunk: \(why)"
            }
        }
    }

    /// Where the blob lives, once present. Only 64 lowercase hex digits are accepted.
    public func path(for sha256: String) throws -> String {
        guard sha256.count == 64, sha256.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { throw Failure.badHash(sha256) }
        return directory.appendingPathComponent(String(sha256.prefix(2))).appendingPathComponent(sha256).path
    }

    /// Whether the blob is already here (fetched earlier, or by another worker sharing the
    /// folder) with the right content: a file changed since is fetched again.
    public func contains(_ blob: Lopper_Wire_BlobRef) throws -> Bool {
        let path = try path(for: blob.sha256)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value
        return size == blob.size && (try? FileDigest.sha256(path)) == blob.sha256
    }

    /// Fetches the blob chunk by chunk through `fetch(offset, length)` unless it is here already;
    /// returns its path and the bytes transferred.
    public func obtain(_ blob: Lopper_Wire_BlobRef, chunkBytes: Int,
                       fetch: (UInt64, Int) async throws -> Lopper_Wire_BlobChunk) async throws -> (path: String, transferred: UInt64) {
        let destination = try path(for: blob.sha256)
        if try contains(blob) { return (destination, 0) }
        let folder = URL(fileURLWithPath: destination).deletingLastPathComponent()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let temporary = folder.appendingPathComponent(".\(blob.sha256).\(UUID().uuidString).part")
        _ = FileManager.default.createFile(atPath: temporary.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: temporary) }
        let handle = try FileHandle(forWritingTo: temporary)
        var hasher = SHA256()
        var offset: UInt64 = 0
        do {
            while offset < blob.size {
                let chunk = try await fetch(offset, chunkBytes)
                guard chunk.sha256 == blob.sha256, chunk.offset == offset, !chunk.data.isEmpty,
                      chunk.data.count <= chunkBytes, offset + UInt64(chunk.data.count) <= blob.size else {
                    throw Failure.badChunk("asked for \(blob.role) at \(offset), got \(chunk.data.count) bytes at \(chunk.offset)")
                }
                try handle.write(contentsOf: chunk.data)
                hasher.update(data: chunk.data)
                offset += UInt64(chunk.data.count)
            }
            try handle.close()
        } catch {
            try? handle.close()
            throw error
        }
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        guard digest == blob.sha256 else { throw Failure.mismatch(role: blob.role, expected: blob.sha256, got: digest) }
        // Another worker sharing the cache may have won the race; its file is the same bytes.
        if try rename(temporary.path, destination) != 0 && !contains(blob) {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: destination])
        }
        return (destination, offset)
    }
}
