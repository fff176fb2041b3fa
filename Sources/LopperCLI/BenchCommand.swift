import ArgumentParser
import Foundation
import LopperModel
import LopperRuntime

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time a model on random inputs: median and p90 latency and achieved GFLOP/s.",
        discussion: """
            Inputs are random normal values; a symbolic leading (batch) dimension takes --batch and other \
            symbolic sizes need --input-shape. FLOPs are twice the multiply-accumulates that `lopper inspect` \
            counts. The first --warmup runs are not timed.

            Example:
              lopper bench Tests/Fixtures/models/conv_chain.onnx --runs 5
            """)

    @OptionGroup var modelOptions: ModelOptions
    @OptionGroup var runtime: RuntimeOptions

    @Option(help: "Timed runs.")
    var runs: Int = 20

    @Option(help: "Untimed runs before timing.")
    var warmup: Int = 3

    @Flag(help: "Print machine-readable JSON instead of text.")
    var json = false

    func validate() throws {
        guard runs >= 1, warmup >= 0 else { throw ValidationError("--runs must be at least 1 and --warmup at least 0.") }
    }

    func run() throws {
        let model = try modelOptions.load()
        let shapes = try modelOptions.parsedInputShapes()
        let summary: ModelSummary
        do {
            summary = try ModelSummary(model, inputShapes: shapes, batch: modelOptions.batch)
        } catch {
            throw (error as? ModelError)?.inFile(modelOptions.model) ?? error
        }
        let executor = try runtime.executor(for: model)
        var generator = SystemRandomNumberGenerator()
        var feeds: [String: Tensor] = [:]
        for input in executor.inputs {
            let shape = try shapes[input.name] ?? (input.type?.shape ?? []).enumerated().map { axis, dim in
                if let value = dim.value { return value }
                guard axis == 0 else {
                    throw ValidationError("input '\(input.name)' has symbolic size '\(dim)' at axis \(axis); give it with --input-shape \(input.name)=...")
                }
                return modelOptions.batch
            }
            do {
                for type in [ElementType.float32, input.type?.elementType ?? .float32] { try AllocationLimit.check(type, shape: shape) }
            } catch let error as ModelError {
                throw ModelError(error.message, file: modelOptions.model, field: "input '\(input.name)'")
            }
            let count = shape.reduce(1, *)
            let values = (0..<count).map { _ in Float.random(in: -1...1, using: &generator) }
            feeds[input.name] = try Tensor(floats: values, shape: shape).converted(to: input.type?.elementType ?? .float32)
        }
        for _ in 0..<warmup { _ = try executor.run(feeds) }
        var times: [Double] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            _ = try executor.run(feeds)
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        times.sort()
        let median = times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
        let p90 = times[min(times.count - 1, Int((Double(times.count) * 0.9).rounded(.up)) - 1)]
        let flops = 2 * Double(summary.macs)
        let gflops = flops / (median / 1e3) / 1e9
        let peakRSS = Self.peakResidentBytes()
        if json {
            let object: [String: Any] = ["median_ms": median, "p90_ms": p90, "min_ms": times[0], "gflops": gflops,
                                         "flops": flops, "threads": runtime.threads, "runs": runs, "peak_rss_bytes": peakRSS,
                                         "inputs": feeds.mapValues(\.shape), "blas_core": BLASKernels.coreName,
                                         "conv_isa": TapConvolution.instructionSet]
            print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        } else {
            let shapesText = feeds.keys.sorted().map { "\($0)=\(feeds[$0]!.shape.map(String.init).joined(separator: "x"))" }.joined(separator: " ")
            print("\(modelOptions.model): \(shapesText), \(runtime.threads) thread\(runtime.threads == 1 ? "" : "s"), \(runs) runs")
            print(String(format: "median  %.3f ms", median))
            print(String(format: "p90     %.3f ms", p90))
            print(String(format: "GFLOP/s %.2f (%.3f GFLOP per run)", gflops, flops / 1e9))
            print("peak RSS \(Format.bytes(peakRSS))")
        }
    }

    /// The process's peak resident set size so far. Linux's `VmHWM` counts this program only;
    /// `getrusage` would also count what the parent used before `exec`.
    static func peakResidentBytes() -> Int {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kib = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") {
            return kib * 1024
        }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return usage.ru_maxrss * 1024
    }
}
