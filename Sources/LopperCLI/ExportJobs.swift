import Foundation
import LopperCoordination
import LopperExport
import LopperSensitivity

/// Runs export jobs on a worker: the export layer wired into coordination's one-method seam.
/// Built once per worker run from the sweep's setup and the batch's sensitivity table.
struct ExportJobHandler: JobHandler {
    let exporter: Exporter

    static let factory: JobHandlerFactory = { session in
        guard let path = session.attachments[.table] else {
            throw JobFailure("the coordinator attached no sensitivity table to its export jobs")
        }
        let table: SensitivityTable
        do { table = try JSONDecoder().decode(SensitivityTable.self, from: Data(contentsOf: URL(fileURLWithPath: path))) } catch {
            throw JobFailure("the sensitivity table the coordinator sent cannot be read: \(error)")
        }
        // The constraints come with each job; a held-out split comes as attachments.
        let heldOut = session.attachments[.heldOut].map { Exporter.HeldOutSplit(data: $0, labels: session.attachments[.heldOutLabels]) }
        return ExportJobHandler(exporter: try Exporter(setup: session.setup, table: table, constraints: PlanningConstraints(),
                                                       version: Lopper.configuration.version, heldOut: heldOut))
    }

    /// The table as it travels to the workers.
    static func encode(_ table: SensitivityTable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(table)
    }

    func run(_ payload: Data) throws -> [ProducedFile] {
        try exporter.run(try ExportRequest(encoded: payload)).files.map { ProducedFile(name: $0.name, data: $0.data) }
    }
}

/// Each profile's outcome, by its place in `--profiles`, as jobs finish in any order.
final class ExportOutcomes: @unchecked Sendable {
    private let lock = NSLock()
    private var outcomes: [Result<Manifest, Error>?]
    private let progress: ProgressBar?

    init(count: Int, progress: ProgressBar? = nil) {
        outcomes = Array(repeating: nil, count: count)
        self.progress = progress
    }

    /// Keeps the first outcome of profile `index` (and shows the progress); a failure is reported
    /// on standard error at once.
    func record(_ index: Int, profile reference: String, _ outcome: Result<Manifest, Error>) {
        let first = lock.withLock {
            guard outcomes[index] == nil else { return false }
            outcomes[index] = outcome
            let failed = outcomes.filter { if case .failure = $0 { return true } else { return false } }.count
            progress?.update(done: outcomes.filter { $0 != nil }.count, total: outcomes.count, failed: failed)
            return true
        }
        if first, case .failure(let error) = outcome { FileHandle.standardError.write(Data("\(reference): \(error)\n".utf8)) }
    }

    /// The outcomes in profile order; a profile whose job never ended is a failure.
    var all: [Result<Manifest, Error>] {
        lock.withLock { outcomes.map { $0 ?? .failure(JobFailure("the export did not run")) } }
    }
}
