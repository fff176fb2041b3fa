import ArgumentParser
import Foundation
import LopperModel
import LopperRuntime

/// `--threads`, shared by the commands that execute a model.
struct RuntimeOptions: ParsableArguments {
    @Option(help: "Intra-op threads (default: all cores).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1.") }
    }

    func executor(for model: Model) throws -> Executor {
        try Executor(model: model, options: ExecutorOptions(threads: threads))
    }
}

struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a model on inputs from .npy files and write each output as .npy.",
        discussion: """
            Each --input names a graph input and a file: NAME=FILE.npy, or NAME=FILE.npz for the \
            archive member NAME (or its only member). Outputs are written to --output-dir as \
            OUTPUT.npy, with characters other than letters, digits, '.', '_' and '-' replaced by '_' \
            (and _2, _3, … added where two outputs would share a file).

            Example:
              lopper run Tests/Fixtures/models/chain24.onnx \\
                --input x=Tests/Fixtures/models/chain24_calib.npz --output-dir outputs
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions

    @Option(name: .customLong("input"), help: ArgumentHelp("A graph input and its file (repeatable).", valueName: "name=file.npy"))
    var inputs: [String] = []

    @Option(help: "Folder for the output .npy files (created if missing).")
    var outputDir: String = "."

    func validate() throws {
        for entry in inputs where !entry.contains("=") {
            throw ValidationError("--input '\(entry)' must look like name=file.npy.")
        }
    }

    func run() throws {
        let model = try modelOptions.load()
        let executor = try runtime.executor(for: model)
        var feeds: [String: Tensor] = [:]
        for entry in inputs {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            feeds[parts[0]] = try Tensor(try Self.read(parts[1], member: parts[0]))
        }
        let outputs = try executor.run(feeds)
        try OutputFolder.create(outputDir)
        var taken = Set<String>()
        for name in executor.outputNames {
            guard let value = outputs[name] else { continue }
            let path = URL(fileURLWithPath: outputDir).appendingPathComponent(Self.fileName(for: name, taken: &taken)).path
            try NumPy.write(value.tensorData(), to: path)
            print("\(name): \(value.elementType)\(value.shape) -> \(path)")
        }
    }

    /// `OUTPUT.npy` with unsafe characters replaced by '_'; a name another output already took
    /// gets `_2`, `_3`, … (`a/b` and `a_b` would both be `a_b.npy`).
    static func fileName(for output: String, taken: inout Set<String>) -> String {
        let safe = String(output.map { $0.isLetter || $0.isNumber || "._-".contains($0) ? $0 : "_" })
        var name = safe + ".npy", suffix = 2
        while taken.contains(name) {
            name = "\(safe)_\(suffix).npy"
            suffix += 1
        }
        taken.insert(name)
        return name
    }

    /// A `.npy` file, or one member of a `.npz` archive.
    static func read(_ file: String, member: String) throws -> TensorData {
        guard try NumPy.format(of: file) == .archive else { return try NumPy.read(path: file) }
        let arrays = try NumPy.readArchive(path: file)
        if let array = arrays[member] { return array }
        if arrays.count == 1, let only = arrays.values.first { return only }
        throw ModelError("has no member '\(member)' (members: \(arrays.keys.joined(separator: ", ")))", file: file)
    }
}
