import ArgumentParser
import Foundation
import LopperModel

struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a model's layers: shapes, parameters, MACs and the pruning granularities that apply.",
        discussion: """
            Symbolic input sizes must be known to count MACs: a symbolic leading (batch) dimension \
            defaults to --batch, other symbolic sizes need --input-shape (e.g. --input-shape x=1x3x640x640). \
            Operators Lopper does not support yet are listed with the nodes that use them.

            Example:
              lopper inspect Tests/Fixtures/models/conv_chain.onnx
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Flag(help: "Print machine-readable JSON instead of a table.")
    var json = false

    func run() throws {
        let model = try modelOptions.load()
        let summary: ModelSummary
        do {
            summary = try ModelSummary(model, inputShapes: try modelOptions.parsedInputShapes(), batch: modelOptions.batch)
        } catch {
            throw (error as? ModelError)?.inFile(modelOptions.model) ?? error
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(summary), as: UTF8.self))
        } else {
            print(Self.report(summary, path: modelOptions.model))
        }
    }

    static func report(_ s: ModelSummary, path: String) -> String {
        var table = TextTable(["#", "node", "op", "input", "output", "params", "MACs", "prunable as"], rightAligned: [0, 5, 6])
        for (i, layer) in s.layers.enumerated() {
            table.append([
                String(i), layer.name, layer.domain.isEmpty ? layer.opType : "\(layer.domain).\(layer.opType)",
                layer.inputShapes.first ?? "", layer.outputShapes.first ?? "",
                layer.params == 0 ? "" : Format.grouped(layer.params),
                layer.macs.map { $0 == 0 ? "" : Format.short($0) } ?? "?",
                layer.granularities.joined(separator: " "),
            ])
        }
        var lines = ["\(path): \(s.producer.isEmpty ? "unknown producer" : s.producer), IR \(s.irVersion), opsets "
                     + s.opsets.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")]
        lines += s.inputs.map { "input  \($0.name): \($0.type)" } + s.outputs.map { "output \($0.name): \($0.type)" }
        if !s.metadataKeys.isEmpty { lines.append("metadata: \(s.metadataKeys.joined(separator: ", "))") }
        lines += ["", table.render(), ""]
        lines.append("layers      \(s.layers.count)")
        lines.append("params      \(Format.grouped(s.params))")
        lines.append("weights     \(Format.bytes(s.weightBytes))")
        var macs = "MACs        \(Format.grouped(s.macs)) (\(Format.short(s.macs)))"
        if !s.assumedDimensions.isEmpty {
            macs += " with " + s.assumedDimensions.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", ")
        }
        lines.append(macs)
        if s.layersWithUnknownMACs > 0 {
            lines.append("            \(s.layersWithUnknownMACs) layers have unknown MACs: give their inputs' sizes with --input-shape")
        }
        if s.unsupported.isEmpty {
            lines.append("unsupported none")
        } else {
            lines.append("unsupported \(s.unsupported.reduce(0) { $0 + $1.nodes.count }) nodes:")
            for op in s.unsupported {
                let names = op.nodes.prefix(8).joined(separator: ", ") + (op.nodes.count > 8 ? ", … (\(op.nodes.count) in all)" : "")
                lines.append("  \(op.domain == "ai.onnx" ? "" : op.domain + ".")\(op.opType): \(names)")
            }
        }
        return lines.joined(separator: "\n")
    }
}
