import Foundation
import LopperModel
import LopperTesting
import OrderedCollections
import Testing

struct NumPyTests {
    static let writableTypes = ElementType.allCases.filter { $0 != .string && $0 != .bfloat16 }

    /// A tensor of `type` whose bytes are 0, 1, 2, … (bools 0/1).
    static func sample(_ type: ElementType, shape: [Int] = [2, 3]) throws -> TensorData {
        let count = shape.reduce(1, *) * type.byteSize
        let bytes = Data((0..<count).map { type == .bool ? UInt8($0 % 2) : UInt8(truncatingIfNeeded: $0) })
        return try TensorData(elementType: type, shape: shape, bytes: bytes)
    }

    @Test(arguments: writableTypes)
    func roundTripsEveryType(type: ElementType) throws {
        for shape in [[2, 3], [], [4], [0, 5]] {
            let tensor = try Self.sample(type, shape: shape)
            let decoded = try NumPy.decode(try NumPy.encode(tensor))
            #expect(decoded == tensor)
        }
    }

    @Test func headerIsAlignedAndReadableByNumPy() throws {
        let data = try NumPy.encode(try Self.sample(.float32))
        let headerEnd = 10 + Int(data[8]) + Int(data[9]) << 8
        #expect(headerEnd % 64 == 0)
        #expect(data[headerEnd - 1] == UInt8(ascii: "\n"))
    }

    @Test(.enabled(if: Reference.isAvailable))
    func readsWhatNumPyWritesAndBack() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = """
            import numpy as np, sys
            d = sys.argv[1]
            np.save(d + '/a.npy', np.arange(24, dtype=np.int32).reshape(2, 3, 4))
            np.save(d + '/b.npy', np.array([[True, False]]))
            np.save(d + '/c.npy', np.float16(1.5))
            np.save(d + '/f.npy', np.asfortranarray(np.ones((2, 3), np.float32)))
            np.save(d + '/be.npy', np.arange(3, dtype='>f4'))
            np.savez(d + '/s.npz', first=np.ones(3, np.float32), second=np.arange(2))
            np.savez_compressed(d + '/z.npz', only=np.arange(6, dtype=np.float64).reshape(3, 2))
            """
        let result = try Reference.run(["python3", "-c", script, directory.path])
        #expect(result.status == 0, "\(result.stderr)")
        let a = try NumPy.read(path: directory.appendingPathComponent("a.npy").path)
        #expect(a.elementType == .int32 && a.shape == [2, 3, 4] && a.int64s() == (0..<24).map(Int64.init))
        let b = try NumPy.read(path: directory.appendingPathComponent("b.npy").path)
        #expect(b.elementType == .bool && b.shape == [1, 2] && b.floats() == [1, 0])
        let c = try NumPy.read(path: directory.appendingPathComponent("c.npy").path)
        #expect(c.elementType == .float16 && c.shape == [] && c.floats() == [1.5])
        let fortran = directory.appendingPathComponent("f.npy").path
        let fortranError = #expect(throws: ModelError.self) { try NumPy.read(path: fortran) }
        #expect(fortranError?.description.hasPrefix(fortran) == true)
        #expect(fortranError?.description.contains("Fortran order") == true)
        let bigEndian = directory.appendingPathComponent("be.npy").path
        let endianError = #expect(throws: ModelError.self) { try NumPy.read(path: bigEndian) }
        #expect(endianError?.description.contains("big-endian") == true)
        #expect(endianError?.file == bigEndian)

        let stored = try NumPy.readArchive(path: directory.appendingPathComponent("s.npz").path)
        #expect(Array(stored.keys) == ["first", "second"])
        #expect(stored["first"]?.floats() == [1, 1, 1])
        #expect(stored["second"]?.int64s() == [0, 1])
        let compressed = try NumPy.readArchive(path: directory.appendingPathComponent("z.npz").path)
        #expect(compressed["only"]?.shape == [3, 2] && compressed["only"]?.doubles() == [0, 1, 2, 3, 4, 5])

        // And numpy reads what we write.
        let ours = directory.appendingPathComponent("ours.npz").path
        try NumPy.writeArchive(["x": try Self.sample(.float32), "y": try Self.sample(.int64, shape: [3])], to: ours)
        try NumPy.write(try Self.sample(.uint16, shape: [5]), to: directory.appendingPathComponent("ours.npy").path)
        let check = """
            import numpy as np, sys
            d = sys.argv[1]
            z = np.load(d + '/ours.npz')
            assert sorted(z.files) == ['x', 'y'], z.files
            assert z['x'].dtype == np.float32 and z['x'].shape == (2, 3)
            assert z['y'].dtype == np.int64 and z['y'].shape == (3,)
            u = np.load(d + '/ours.npy')
            assert u.dtype == np.uint16 and u.shape == (5,) and u[1] == 0x0302, u
            """
        let checked = try Reference.run(["python3", "-c", check, directory.path])
        #expect(checked.status == 0, "\(checked.stderr)")
    }

    @Test func corruptFilesNameTheFile() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let valid = try NumPy.encode(try Self.sample(.float32))
        let cases: [(String, Data, String)] = [
            ("empty.npy", Data(), "not a .npy file"),
            ("magic.npy", Data("PK\u{3}\u{4}not numpy".utf8), "not a .npy file"),
            ("truncated.npy", valid.prefix(valid.count - 3), "data bytes"),
            ("header.npy", valid.prefix(40), "truncated"),
            ("dtype.npy", Self.replacing(valid, "<f4", with: "<c8"), "unsupported dtype"),
            ("shape.npy", Self.replacing(valid, "(2, 3)", with: "(2, x)"), "unreadable 'shape'"),
        ]
        for (name, bytes, expected) in cases {
            let path = directory.appendingPathComponent(name).path
            try bytes.write(to: URL(fileURLWithPath: path))
            let error = #expect(throws: ModelError.self) { try NumPy.read(path: path) }
            #expect(error?.file == path)
            #expect(error?.description.contains(expected) == true, "\(name): \(error?.description ?? "")")
        }
        let missing = directory.appendingPathComponent("missing.npy").path
        #expect((#expect(throws: ModelError.self) { try NumPy.read(path: missing) })?.file == missing)
        let notZip = directory.appendingPathComponent("bad.npz").path
        try Data("not a zip".utf8).write(to: URL(fileURLWithPath: notZip))
        #expect((#expect(throws: ModelError.self) { try NumPy.readArchive(path: notZip) })?.file == notZip)
    }

    /// `data` with the first occurrence of an ASCII string replaced by one of the same length.
    static func replacing(_ data: Data, _ old: String, with new: String) -> Data {
        var copy = data
        if let range = copy.range(of: Data(old.utf8)) { copy.replaceSubrange(range, with: Data(new.utf8)) }
        return copy
    }

    @Test func typesWithoutNumPyDtypeAreRejected() throws {
        let bf16 = try TensorData(elementType: .bfloat16, shape: [1], bytes: Data([0, 0]))
        #expect(throws: ModelError.self) { try NumPy.encode(bf16) }
    }

    @Test(.enabled(if: Fixtures.hasRealModels))
    func readsTheCalibrationArchive() throws {
        let arrays = try NumPy.readArchive(path: Fixtures.real("digits_calib.npz"))
        let input = try #require(arrays["input"])
        #expect(input.shape.last == 64)
        #expect(input.elementType == .float32)
    }
}
