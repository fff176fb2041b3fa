import ArgumentParser
import Foundation
import LopperModel

/// The model argument and input-shape options shared by commands that read a model.
struct ModelOptions: ParsableArguments {
    @Argument(help: "The ONNX model file.")
    var model: String

    @Option(name: .customLong("input-shape"),
            help: ArgumentHelp("Shape of a graph input, for symbolic sizes (repeatable).", valueName: "name=d0xd1x..."))
    var inputShapes: [String] = []

    @Option(help: "Value for a symbolic leading (batch) dimension of inputs without --input-shape.")
    var batch: Int = 1

    func validate() throws {
        _ = try parsedInputShapes()
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1.") }
    }

    /// `x=1x3x640x640` (or with commas) parsed into a name and dimensions.
    func parsedInputShapes() throws -> [String: [Int]] {
        var shapes: [String: [Int]] = [:]
        for entry in inputShapes {
            let parts = entry.split(separator: "=", maxSplits: 1)
            let dims = parts.count == 2 ? parts[1].split(whereSeparator: { $0 == "x" || $0 == "," }).map { Int($0) } : []
            guard parts.count == 2, !dims.isEmpty, dims.allSatisfy({ ($0 ?? 0) > 0 }) else {
                throw ValidationError("--input-shape '\(entry)' must look like name=1x3x224x224 with positive sizes.")
            }
            shapes[String(parts[0])] = dims.map { $0! }
        }
        return shapes
    }

    func load() throws -> Model { try Model.loadWarning(path: model) }
}

extension Model {
    /// Loads a model and prints its version warnings to standard error.
    static func loadWarning(path: String) throws -> Model {
        let model = try Model.load(path: path)
        for warning in model.versionWarnings { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        return model
    }
}
