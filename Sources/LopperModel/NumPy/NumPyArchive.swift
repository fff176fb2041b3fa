import Foundation
import OrderedCollections
import ZIPFoundation

/// NumPy's `.npz`: a zip archive of `.npy` files, stored or deflated, one per named array.
extension NumPy {
    /// What a NumPy file holds: one array (`.npy`) or a zip of named arrays (`.npz`).
    public enum Format: Sendable { case array, archive }

    static let zipMagic: [UInt8] = [0x50, 0x4B, 0x03, 0x04]  // "PK\x03\x04"

    /// Tells `.npy` from `.npz` by the first bytes, never by the name: a worker's blob cache,
    /// for one, names files by their hash.
    public static func format(of path: String) throws -> Format {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw ModelError("cannot be read", file: path) }
        defer { try? handle.close() }
        let head = [UInt8]((try? handle.read(upToCount: 6)) ?? Data())
        if head == magic { return .array }
        if head.starts(with: zipMagic) { return .archive }
        throw ModelError("is not a .npy file nor a .npz archive (it starts with neither \\x93NUMPY nor PK\\x03\\x04)", file: path)
    }

    /// Reads every array of a `.npz` file, keyed by name (the member name without `.npy`).
    public static func readArchive(path: String) throws -> OrderedDictionary<String, TensorData> {
        let archive: Archive
        do { archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read) } catch {
            throw ModelError("is not a readable .npz (zip) archive: \(error)", file: path)
        }
        var arrays: OrderedDictionary<String, TensorData> = [:]
        for entry in archive where entry.type == .file {
            var data = Data()
            let checksum: CRC32
            do {
                checksum = try archive.extract(entry, skipCRC32: false) { data.append($0) }
            } catch {
                throw ModelError("cannot be extracted: \(error)", file: path, field: "member '\(entry.path)'")
            }
            guard checksum == entry.checksum else {
                throw ModelError("is damaged: its bytes have CRC-32 \(String(format: "%08x", checksum)), the archive records \(String(format: "%08x", entry.checksum))",
                                 file: path, field: "member '\(entry.path)'")
            }
            let name = entry.path.hasSuffix(".npy") ? String(entry.path.dropLast(4)) : entry.path
            do { arrays[name] = try decode(data) } catch let error as ModelError {
                throw ModelError(error.message, file: path, field: "member '\(entry.path)'")
            }
        }
        return arrays
    }

    /// Writes arrays to a `.npz` file (stored, uncompressed, as `np.savez` does).
    public static func writeArchive(_ arrays: OrderedDictionary<String, TensorData>, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try? FileManager.default.removeItem(at: url)
        do {
            let archive = try Archive(url: url, accessMode: .create)
            for (name, tensor) in arrays {
                let data = try encode(tensor)
                try archive.addEntry(with: name + ".npy", type: .file, uncompressedSize: Int64(data.count),
                                     compressionMethod: .none) { position, size in
                    data.subdata(in: Int(position)..<Int(position) + size)
                }
            }
        } catch let error as ModelError {
            throw error.inFile(path)
        } catch {
            throw ModelError("cannot be written: \(error)", file: path)
        }
    }
}
