import Foundation
import OrderedCollections
import ZIPFoundation

/// NumPy's `.npz`: a zip archive of `.npy` files, stored or deflated, one per named array.
extension NumPy {
    /// Reads every array of a `.npz` file, keyed by name (the member name without `.npy`).
    public static func readArchive(path: String) throws -> OrderedDictionary<String, TensorData> {
        let archive: Archive
        do { archive = try Archive(url: URL(fileURLWithPath: path), accessMode: .read) } catch {
            throw ModelError("is not a readable .npz (zip) archive: \(error)", file: path)
        }
        var arrays: OrderedDictionary<String, TensorData> = [:]
        for entry in archive where entry.type == .file {
            var data = Data()
            do {
                _ = try archive.extract(entry, skipCRC32: false) { data.append($0) }
            } catch {
                throw ModelError("cannot be extracted: \(error)", file: path, field: "member '\(entry.path)'")
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
