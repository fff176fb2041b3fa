import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM (Kubernetes scaling down, Slurm ending, `kill`) and SIGINT (Ctrl-C) handled instead
/// of ending the process at once: `handler` runs once, on a Dispatch thread, with the signal's
/// number, and is expected to end the process. Later signals are ignored while it runs.
final class StopSignals: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var stopping = false

    init(_ handler: @escaping @Sendable (Int32) -> Void) {
        sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [weak self] in
                guard let self, self.lock.withLock({ () -> Bool in
                    defer { self.stopping = true }
                    return !self.stopping
                }) else { return }
                handler(number)
            }
            source.resume()
            return source
        }
    }

    /// Whether a stop signal arrived (its handler is running or has run).
    var isStopping: Bool { lock.withLock { stopping } }

    /// Stops handling; the signals stay ignored (the caller is about to return or exit).
    func cancel() { sources.forEach { $0.cancel() } }
}
