import Foundation
import LopperSensitivity

/// A store's jobs as CSV and JSON, one row per job: what `lopper results --format csv|json`
/// prints and what the report embeds for download.
public enum SweepTables {
    public static let columns = ["group_id", "group", "granularity", "criterion", "level", "state", "score", "removed",
                                 "wall_seconds", "macs_executed", "worker", "error", "stderr"]

    static func fields(_ row: ResultsStore.Row, names: [Int: String]) -> [String: Any] {
        var result: [String: Any] = [
            "group_id": row.job.group, "group": names[row.job.group] ?? "", "granularity": row.job.granularity.rawValue,
            "criterion": row.job.criterion, "level": row.job.level, "state": row.state.rawValue,
        ]
        result["score"] = row.score
        result["removed"] = row.removed
        result["wall_seconds"] = row.seconds
        result["macs_executed"] = row.macsExecuted
        result["worker"] = row.worker
        result["error"] = row.error
        result["stderr"] = row.stderr
        return result
    }

    public static func csv(_ rows: [ResultsStore.Row], names: [Int: String]) -> String {
        func quote(_ value: Any?) -> String {
            guard let value else { return "" }
            let text: String
            if let double = value as? Double { text = String(describing: double) } else { text = "\(value)" }
            return text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        let lines = rows.map { row in
            let values = fields(row, names: names)
            return columns.map { quote(values[$0]) }.joined(separator: ",")
        }
        return ([columns.joined(separator: ",")] + lines).joined(separator: "\n")
    }

    public static func json(_ rows: [ResultsStore.Row], names: [Int: String], metric: String, baseline: Double?) throws -> String {
        var object: [String: Any] = ["jobs": rows.map { fields($0, names: names) }, "metric": metric]
        if let baseline { object["baseline"] = baseline }
        let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}
