@testable import LopperCLI
import Testing

@Suite struct ProgressBarTests {
    @Test func lineShowsCountRateEtaWorkersAndFailures() {
        #expect(ProgressBar.text(label: "sweep", unit: "jobs", done: 120, total: 400, failed: 1, workers: 2, elapsed: 40, bar: false)
                == "sweep  120/400 jobs  3.00 jobs/s  ETA 1m34s  2 workers  1 failed")
        #expect(ProgressBar.text(label: "sweep", unit: "jobs", done: 6, total: 24, failed: 0, workers: nil, elapsed: 3, bar: true)
                == "sweep  [======                  ]  6/24 jobs  2.00 jobs/s  ETA 9s")
        // Done: no ETA. Nothing done yet: no rate to project from.
        #expect(!ProgressBar.text(label: "x", unit: "steps", done: 5, total: 5, failed: 0, workers: nil, elapsed: 1, bar: false).contains("ETA"))
        #expect(!ProgressBar.text(label: "x", unit: "steps", done: 0, total: 5, failed: 0, workers: nil, elapsed: 1, bar: false).contains("ETA"))
        #expect(ProgressBar.duration(3725) == "1h02m" && ProgressBar.duration(59.2) == "1m00s" && ProgressBar.duration(0.4) == "1s")
    }

    /// Not on a terminal: a line every interval and at the end, never the same count twice.
    @Test func logLinesWhenNotATerminal() {
        var clock = 0.0, lines: [String] = []
        let bar = ProgressBar(label: "measuring", unit: "steps", terminal: false, logInterval: 10,
                              write: { lines.append($0) }, now: { clock })
        for done in 0...30 {
            clock = Double(done)
            bar.update(done: done, total: 30)
        }
        bar.finish()
        #expect(lines.map { $0.components(separatedBy: " steps")[0] }
                == ["measuring  0/30", "measuring  10/30", "measuring  20/30", "measuring  30/30"])
        #expect(lines.allSatisfy { $0.hasSuffix("\n") && !$0.contains("[") })
    }

    /// On a terminal the line is redrawn in place, at most ten times a second and at the end,
    /// and ended once; live workers are asked for only when a line is drawn.
    @Test func redrawnInPlaceOnATerminal() {
        var output = "", clock = 1.0, asked = 0
        let bar = ProgressBar(label: "export", unit: "profiles", terminal: true, write: { output += $0 }, now: { clock })
        func workers() -> Int { asked += 1; return 2 }
        bar.update(done: 1, total: 4, workers: workers())
        clock = 1.05
        bar.update(done: 2, total: 4, workers: workers())  // too soon: not drawn
        clock = 1.2
        bar.update(done: 3, total: 4, workers: workers())
        bar.update(done: 4, total: 4, workers: workers())  // the end: always drawn
        bar.finish()
        #expect(output.components(separatedBy: "\r\u{1B}[K").count == 4 && output.hasSuffix("\n") && output.filter { $0 == "\n" }.count == 1)
        #expect(asked == 3 && !output.contains("2/4") && output.contains("2 workers"))
    }
}
