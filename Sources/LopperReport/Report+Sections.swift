import Foundation
import LopperAllocation
import LopperExport
import LopperSensitivity

extension SensitivityTable.Curve {
    /// `channel / l1`: the granularity and criterion a curve was measured with.
    public var kind: String { "\(granularity.rawValue) / \(criterion)" }
}

extension Report {
    private var damageTitle: String { "damage (\(input.metric) drop)" }

    private var curves: [SensitivityTable.Curve] { input.table?.curves ?? [] }

    private func label(_ group: Int) -> String { "\(group) \(input.groupNames[group] ?? "")" }

    private var notYet: String { "<p class=\"note\">No finished jobs yet.</p>\n" }

    /// Small multiples: one chart per group, one line per granularity and criterion.
    func sensitivityCurves() -> String {
        guard !curves.isEmpty else { return notYet }
        let byGroup = Dictionary(grouping: curves, by: \.group)
        let width: Double = byGroup.count > 4 ? 330 : 460
        let charts = byGroup.keys.sorted().map { group in
            LineChart(title: label(group), xTitle: "pruned fraction", yTitle: damageTitle,
                      series: byGroup[group]!.map { .init(name: $0.kind, points: $0.points.map { ($0.level, $0.damage) }) },
                      width: width, height: width * 0.6).svg()
        }
        return "<div class=\"multiples\">\n\(charts.joined(separator: "\n"))\n</div>\n"
    }

    /// Per granularity and criterion, a heat map of groups × levels and the table of its values.
    func heatMaps() -> String {
        guard !curves.isEmpty else { return notYet }
        var out = ""
        for (kind, selected) in Dictionary(grouping: curves, by: \.kind).sorted(by: { $0.key < $1.key }) {
            let levels = Array(Set(selected.flatMap { $0.points.map(\.level) })).sorted()
            let rows = selected.sorted { $0.group < $1.group }
            let values = rows.map { curve in levels.map { level in curve.points.first { $0.level == level }?.damage } }
            let map = HeatMap(title: kind, rows: rows.map { label($0.group) }, columns: levels.map { String(format: "%.2f", $0) },
                              values: values, valueTitle: "damage")
            let table = htmlTable(["group"] + levels.map { String(format: "%.2f", $0) },
                                  zip(rows, values).map { [label($0.group)] + $1.map { $0.map(format) ?? "" } })
            out += "<div class=\"figure\">\(map.svg())\n\(table)</div>\n"
        }
        return out
    }

    private var prunableGroups: [ReportInput.Group] { input.groups.filter(\.prunable) }

    /// Per profile, the fraction of each group's units (or weights) the export keeps.
    func keptFractions() -> String {
        let groups = prunableGroups
        let chosen = input.exports.map { export in Dictionary(uniqueKeysWithValues: export.plan.groups.map { ($0.group, $0) }) }
        let chart = BarChart(title: "kept fraction per group", valueTitle: "kept fraction (units, or weights for sparsity)",
                             categories: groups.map { label($0.id) },
                             series: zip(input.exports, chosen).map { export, choices in
                                 (export.manifest.profile, groups.map { 1 - (choices[$0.id]?.level ?? 0) })
                             }, width: 560, reference: 1)
        let rows = groups.map { group in
            [label(group.id), String(group.size)] + chosen.map { choices in
                choices[group.id].map { "\($0.kept) (\($0.family), \(format($0.level)) removed)" } ?? "all"
            }
        }
        return "<div class=\"figure\">\(chart.svg())\n\(htmlTable(["group", "size"] + input.exports.map(\.manifest.profile), rows))</div>\n"
    }

    /// Per profile, the residual blocks its export removes, and why: each one's damage measured
    /// alone and what removing it alone saves on that profile.
    func removedBlocks() -> String {
        let measured = Set(curves.filter { $0.granularity == .layer }.map(\.group)).count
        let resources: [Resource] = [.latency, .macs, .paramBytes, .peakActivationBytes]
        var rows: [[String]] = []
        for export in input.exports {
            for removed in export.plan.blocks {
                rows.append([export.manifest.profile, removed.choice.join, String(removed.choice.nodes.count), removed.choice.removal.rawValue,
                             format(removed.predictedDamage)]
                            + resources.map { resource in removed.alone[resource.budgetName].map { resource.format($0) } ?? "" })
            }
        }
        guard !rows.isEmpty else {
            return "<p class=\"note\">No export removes a block (\(measured) blocks measured by the sweep\(measured == 0 ? "; sweep with --granularity layer to offer depth" : "")).</p>\n"
        }
        return "<p class=\"note\">\(measured) blocks measured by the sweep; each row is one block an export removes.</p>\n"
            + htmlTable(["profile", "block (join)", "layers", "removal", "damage alone"] + resources.map { "\($0.budgetName) change alone" }, rows)
    }

    /// Each budget's resource before (dense) and after (the written model, priced from scratch).
    func costs() -> String {
        var categories: [String] = [], exported: [Double?] = [], limits: [Double?] = [], rows: [[String]] = []
        for manifest in input.exports.map(\.manifest) {
            for name in manifest.limits.keys.sorted() {
                guard let dense = manifest.denseCost[name], dense > 0, let after = manifest.assembledCost[name], let limit = manifest.limits[name] else { continue }
                let resource = Resource(budgetName: name)
                let show = { (value: Double) in resource?.format(value) ?? format(value) }
                categories.append("\(manifest.profile) · \(name)")
                exported.append(after / dense)
                limits.append(limit / dense)
                rows.append([manifest.profile, name, show(dense), show(limit), show(after), format(after / dense),
                             manifest.meetsBudgets ? "yes" : "OVER BUDGET"])
            }
        }
        let chart = BarChart(title: "cost as a fraction of the dense model", valueTitle: "fraction of the dense model (dashed: dense)",
                             categories: categories, series: [("exported", exported), ("budget", limits)], width: 560, reference: 1)
        return "<div class=\"figure\">\(chart.svg())\n"
            + htmlTable(["profile", "budget", "dense", "limit", "exported", "exported / dense", "meets budgets"], rows) + "</div>\n"
    }

    /// The allocator's prediction against the damage measured on the written model, for every
    /// export and baseline: points on the dashed diagonal were predicted exactly.
    func predictedAgainstMeasured() -> String {
        var points: [String: [(x: Double, y: Double)]] = [:], order: [String] = [], rows: [[String]] = []
        func add(_ method: String, profile: String, predicted: Double?, measured: Double?) {
            guard let predicted, let measured else { return }
            if points[method] == nil { order.append(method) }
            points[method, default: []].append((predicted, measured))
            rows.append([profile, method, format(predicted), format(measured)])
        }
        for manifest in input.exports.map(\.manifest) {
            add("lopper", profile: manifest.profile, predicted: manifest.predictedDamage, measured: manifest.measuredDamage)
            for baseline in manifest.baselines {
                add(baseline.name, profile: manifest.profile, predicted: baseline.predictedDamage, measured: baseline.measuredDamage)
            }
        }
        let chart = LineChart(title: "predicted against measured damage", xTitle: "predicted \(damageTitle)", yTitle: "measured \(damageTitle)",
                              series: order.map { .init(name: $0, points: points[$0]!, markersOnly: true) },
                              width: 520, height: 340, diagonal: true)
        return "<div class=\"figure\">\(chart.svg())\n\(htmlTable(["profile", "method", "predicted", "measured"], rows))</div>\n"
    }

    /// Measured damage of the export beside uniform, global magnitude and LAMP pruning at the same budgets.
    func baselines() -> String {
        let manifests = input.exports.map(\.manifest)
        var methods = ["lopper"]
        for name in manifests.flatMap({ $0.baselines.map(\.name) }) where !methods.contains(name) { methods.append(name) }
        func damage(_ manifest: Manifest, _ method: String) -> Double? {
            method == "lopper" ? manifest.measuredDamage : manifest.baselines.first { $0.name == method }?.measuredDamage
        }
        let chart = BarChart(title: "measured damage at the same budgets", valueTitle: damageTitle,
                             categories: manifests.map(\.profile),
                             series: methods.map { method in (method, manifests.map { damage($0, method) }) }, width: 560)
        let rows = manifests.map { manifest in
            [manifest.profile, manifest.budgets] + methods.map { method in
                damage(manifest, method).map(format) ?? (manifest.baselines.first { $0.name == method }?.note ?? "-")
            }
        }
        return "<div class=\"figure\">\(chart.svg())\n\(htmlTable(["profile", "budgets"] + methods, rows))</div>\n"
    }
}

/// The sensitivity curves as one SVG document (`lopper results --format svg`): per granularity
/// and criterion a chart with one line per group, stacked.
public enum SensitivityDocument {
    public static func svg(_ table: SensitivityTable, names: [Int: String]) -> String {
        let charts = Dictionary(grouping: table.curves, by: \.kind).sorted { $0.key < $1.key }.map { kind, curves in
            LineChart(title: "\(kind): \(table.metric.rawValue)", xTitle: "pruned fraction", yTitle: "damage (\(table.metric.rawValue) drop)",
                      series: curves.sorted { $0.group < $1.group }.map { curve in
                          .init(name: "\(curve.group) \(names[curve.group] ?? "")", points: curve.points.map { ($0.level, $0.damage) })
                      }, width: 900, height: 420)
        }
        var y = 0.0, body = ""
        for chart in charts {
            body += chart.svg().replacingOccurrences(of: "<svg ", with: "<svg y=\"\(Int(y))\" ", options: [.anchored])
            body += "\n"
            y += chart.height
        }
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\" height=\"\(Int(y))\">\n\(body)</svg>"
    }
}
