import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Read-only memory mapping of a whole file, exposed as `Data` that unmaps itself when the
/// last copy is released. Pages are read from disk only when touched.
enum MappedFile {
    static func map(_ path: String) throws -> Data {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ModelError("cannot open: \(String(cString: strerror(errno)))", file: path) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ModelError("cannot stat: \(String(cString: strerror(errno)))", file: path) }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw ModelError("is not a regular file", file: path) }
        let size = Int(info.st_size)
        if size == 0 { return Data() }
        guard let pointer = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), pointer != MAP_FAILED else {
            throw ModelError("cannot map: \(String(cString: strerror(errno)))", file: path)
        }
        return Data(bytesNoCopy: pointer, count: size, deallocator: .custom { pointer, size in
            munmap(pointer, size)
        })
    }
}
