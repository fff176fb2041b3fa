import ArgumentParser

@available(macOS 10.15, *)
public struct Lopper: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "lopper",
        abstract: "Find how much each layer of an ONNX model tolerates pruning, and prune it to fit a device.",
        discussion: """
            The flow: sweep (sensitivity per group) → allocate or export (the least damage within a device's \
            budgets) → report (an HTML page of it all). lopper demo runs it on a bundled classifier.

            Example:
              lopper demo --out demo
            """,
        version: "0.1.0",
        subcommands: [DemoCommand.self, Inspect.self, Run.self, Bench.self, Groups.self, Prune.self, CostCommand.self, MeasureCommand.self, Sweep.self, Results.self, AllocateCommand.self, ExportCommand.self, ReportCommand.self,
                      CoordinatorCommand.self, WorkerCommand.self, StatusCommand.self, BenchDispatch.self, BenchCost.self]
    )
    public init() {}
}
