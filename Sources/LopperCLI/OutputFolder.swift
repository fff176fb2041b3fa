import Foundation
import LopperModel

/// A folder the user named for output, created with its parents; a path that cannot be one (a
/// file is there or above it, a parent is read-only) is an error naming the path and why.
enum OutputFolder {
    static func create(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw ModelError("cannot create this folder: \(reason(path, error))", file: path)
        }
    }

    /// Why `path` could not be created: what the nearest existing part of it is.
    private static func reason(_ path: String, _ error: Error) -> String {
        let files = FileManager.default
        var existing = (path as NSString).standardizingPath
        while !files.fileExists(atPath: existing), existing != "/", !existing.isEmpty {
            existing = (existing as NSString).deletingLastPathComponent
        }
        var isFolder: ObjCBool = false
        if files.fileExists(atPath: existing, isDirectory: &isFolder), !isFolder.boolValue {
            return "'\(existing)' is a file"
        }
        if !files.isWritableFile(atPath: existing) { return "'\(existing)' is not writable" }
        let underlying = (error as NSError).userInfo[NSUnderlyingErrorKey] as? NSError
        return (underlying ?? error as NSError).localizedDescription
    }
}
