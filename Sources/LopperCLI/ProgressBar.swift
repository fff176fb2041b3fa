import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Progress of long work (sweep, measure, export) on standard error. On a terminal: one line
/// redrawn in place with a bar, done/total, rate, ETA, live workers and failed items. Otherwise
/// (a log file, CI): a plain line every `logInterval` seconds and at the end.
final class ProgressBar {
    let label: String
    let unit: String
    private let terminal: Bool
    private let quiet: Bool
    private let logInterval: Double
    private let write: (String) -> Void
    private let now: () -> Double
    private let start: Double
    /// When the line was last drawn or logged.
    private var lastLog = -Double.infinity
    private var lastLogged: Int?
    private var drawn = false

    init(label: String, unit: String, quiet: Bool = false, terminal: Bool = isatty(STDERR_FILENO) != 0, logInterval: Double = 10,
         write: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) },
         now: @escaping () -> Double = { Date().timeIntervalSinceReferenceDate }) {
        self.label = label
        self.unit = unit
        self.quiet = quiet
        self.terminal = terminal
        self.logInterval = logInterval
        self.write = write
        self.now = now
        start = now()
    }

    /// `sweep [=====     ] 120/400 jobs  3.2 jobs/s  ETA 1m27s  2 workers  1 failed` (the bar on terminals only).
    static func text(label: String, unit: String, done: Int, total: Int, failed: Int, workers: Int?, elapsed: Double, bar: Bool) -> String {
        let rate = elapsed > 0 ? Double(done) / elapsed : 0
        var parts = [label]
        if bar {
            let width = 24, filled = total > 0 ? min(width, width * done / total) : width
            parts.append("[" + String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled) + "]")
        }
        parts.append("\(done)/\(total) \(unit)")
        parts.append(String(format: rate >= 10 ? "%.0f %@/s" : "%.2f %@/s", rate, unit))
        if rate > 0, done < total { parts.append("ETA " + duration(Double(total - done) / rate)) }
        if let workers { parts.append("\(workers) worker\(workers == 1 ? "" : "s")") }
        if failed > 0 { parts.append("\(failed) failed") }
        return parts.joined(separator: "  ")
    }

    static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded(.up))
        return whole >= 3600 ? String(format: "%dh%02dm", whole / 3600, whole / 60 % 60)
            : whole >= 60 ? String(format: "%dm%02ds", whole / 60, whole % 60) : "\(whole)s"
    }

    /// Redraws (at most ten times a second, and at the end) or logs; `workers` is asked only then.
    func update(done: Int, total: Int, failed: Int = 0, workers: @autoclosure () -> Int? = nil) {
        guard !quiet else { return }
        let time = now(), elapsed = time - start
        if terminal {
            guard time - lastLog >= 0.1 || done == total || !drawn else { return }
            lastLog = time
            write("\r\u{1B}[K" + Self.text(label: label, unit: unit, done: done, total: total, failed: failed, workers: workers(), elapsed: elapsed, bar: true))
            drawn = true
        } else if lastLogged != done, time - lastLog >= logInterval || done == total {
            lastLog = time
            lastLogged = done
            write(Self.text(label: label, unit: unit, done: done, total: total, failed: failed, workers: workers(), elapsed: elapsed, bar: false) + "\n")
        }
    }

    /// Ends the terminal line, so that what follows starts on a line of its own.
    func finish() {
        if drawn { write("\n") }
        drawn = false
    }
}
