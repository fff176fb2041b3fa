import ArgumentParser
import Foundation
import LopperModel
import LopperPruning

struct Groups: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the groups of channels that must be pruned together, and whether each can be.",
        discussion: """
            A group joins a layer's output channels with its bias, the BatchNormalization after it, the \
            input channels of every layer that reads them, and whatever residual Adds, Concats and Splits \
            tie to them. A group that reaches a graph output, an operator Lopper cannot prune through or \
            a reshape it cannot rewrite is not prunable; the reason is shown.

            Example:
              lopper groups Tests/Fixtures/models/conv_chain.onnx
            """)

    @Argument(help: "The ONNX model file.")
    var model: String

    @Flag(help: "Print machine-readable JSON instead of a table.")
    var json = false

    @Flag(name: .shortAndLong, help: "List every member tensor of each group.")
    var verbose = false

    func run() throws {
        let loaded = try Model.loadWarning(path: model)
        let groups: [PruneGroup]
        do { groups = try DependencyAnalysis.groups(of: loaded) } catch let error as ModelError { throw error.inFile(model) }
        let blocks: [ResidualBlock]
        do { blocks = try ResidualBlocks.find(in: loaded) } catch let error as ModelError { throw error.inFile(model) }
        if json {
            struct Listing: Encodable {
                var groups: [PruneGroup]
                var blocks: [ResidualBlock]
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(Listing(groups: groups, blocks: blocks)), as: UTF8.self))
            return
        }
        var table = TextTable(["#", "group", "size", "producers", "consumers", "params", "prunable"], rightAligned: [0, 2])
        for group in groups {
            let consumers = Set(group.members.filter { $0.role == .input }.map(\.node)).count
            let parameters = Set(group.members.filter { $0.role == .parameter }.map(\.tensor)).count
            let size = group.isHeads ? "\(group.size) heads of \(group.channelsPerUnit)" : String(group.size)
            table.append([String(group.id), group.name, size, String(group.producers.count), String(consumers),
                          String(parameters), group.blockedBecause.map { "no: \($0)" } ?? "yes"])
            if verbose {
                for member in group.members {
                    let range = "[\(member.groupOffset)..<\(member.groupOffset + member.length)]"
                    let where_ = member.tensorOffset == 0 && member.block == 1 ? "" : " at \(member.tensorOffset)"
                    let block = member.block == 1 ? "" : " ×\(member.block)"
                    table.append(["", "  \(member.role.rawValue)", "", member.node, "\(member.tensor) axis \(member.axis)\(where_)", range + block, ""])
                }
            }
        }
        print(table.render())
        if !blocks.isEmpty {
            // Residual blocks: removable whole (depth), beside the width groups.
            var listing = TextTable(["block", "join", "skip", "layers", "removable"], rightAligned: [0, 3])
            for block in blocks {
                listing.append([String(block.id), block.join, block.skip, String(block.nodes.count),
                                block.refusal.map { "no: \($0)" } ?? "yes"])
            }
            print("\nResidual blocks (x + f(x); removing one leaves x):\n" + listing.render())
        }
        let prunable = groups.filter(\.isPrunable)
        let channels = { (groups: [PruneGroup]) in groups.reduce(0) { $0 + $1.size * $1.channelsPerUnit } }
        let removable = blocks.filter(\.isRemovable).count
        print("\n\(groups.count) groups, \(prunable.count) prunable (\(channels(prunable)) of \(channels(groups)) channels)"
              + (blocks.isEmpty ? "" : "; \(blocks.count) residual block\(blocks.count == 1 ? "" : "s"), \(removable) removable"))
        let coverage = GroupCoverage(model: loaded, groups: groups)
        let percent = String(format: "%.1f", 100 * coverage.fraction)
        let outputs = coverage.outputGroups.count
        print("coverage: \(coverage.prunableChannels) of \(coverage.channels) channels prunable (\(percent)%), "
              + "not counting \(outputs) group\(outputs == 1 ? "" : "s") that define\(outputs == 1 ? "s" : "") a model output")
        for refusal in coverage.refused { print("  refused \(refusal.groups)× \(refusal.reason)") }
    }
}
