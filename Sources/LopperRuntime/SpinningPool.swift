import Foundation
import Synchronization

/// Threads for the kernels' parallel regions that stay awake between regions.
///
/// A model runs dozens of regions of a few hundred microseconds each. Waking a sleeping thread
/// for each (what Dispatch does) costs tens to hundreds of microseconds on a virtual machine,
/// as much as the region itself; these helpers instead spin for a while after each region, so
/// the next one finds them running, and sleep only once the model has gone quiet.
final class SpinningPool: @unchecked Sendable {
    /// How long a helper spins for the next region before it sleeps.
    static let spinNanoseconds: UInt64 = 2_000_000

    /// One parallel region: its chunks are claimed one by one by whoever is free.
    private final class Region: @unchecked Sendable {
        /// Cleared before `run` returns: the closure must not outlive it, and helpers may still
        /// hold the region for a moment after they leave it.
        var body: ((Int) -> Void)?
        let chunks: Int
        let next = Atomic<Int>(0)
        let finished = Atomic<Int>(0)
        /// Helpers inside a chunk; `body` must stay valid until they have left it.
        let inside = Atomic<Int>(0)

        init(body: @escaping (Int) -> Void, chunks: Int) {
            self.body = body
            self.chunks = chunks
        }

        /// Runs chunks until none is left. A helper counts itself inside only once it holds a
        /// chunk, so a helper descheduled before that never makes the caller wait.
        func work(helper: Bool) {
            while true {
                let chunk = next.add(1, ordering: .relaxed).oldValue
                guard chunk < chunks else { return }
                if helper { inside.add(1, ordering: .relaxed) }
                run(chunk)
                finished.add(1, ordering: .releasing)
                if helper { inside.subtract(1, ordering: .releasing) }
            }
        }

        /// Holds `body` only while it runs (the caller may clear it once every chunk is finished
        /// and no helper is inside).
        @inline(never) private func run(_ chunk: Int) { body?(chunk) }
    }

    /// Bumped for every region; spinning helpers watch it.
    private let generation = Atomic<Int>(0)
    private let sleepers = Atomic<Int>(0)
    private var current: Region?
    /// Guards `current`, and is the condition sleeping helpers wait on.
    private let state = NSCondition()
    /// One region at a time: callers on other threads wait their turn. Regions must not nest
    /// (a chunk starting a region of its own would wait for itself); no kernel does.
    private let regions = NSLock()

    private static let lock = NSLock()
    private static var pools: [Int: SpinningPool] = [:]

    /// The process-wide pool for `threads` threads (the caller counts as one).
    static func shared(threads: Int) -> SpinningPool {
        lock.withLock {
            if let pool = pools[threads] { return pool }
            let pool = SpinningPool(helpers: threads - 1)
            pools[threads] = pool
            return pool
        }
    }

    private init(helpers: Int) {
        for index in 0..<helpers {
            // Pools live as long as the process.
            let thread = Thread { self.helperLoop() }
            thread.name = "lopper.kernel.\(index + 1)"
            thread.start()
        }
    }

    /// Calls `body(chunk)` for every chunk in `0..<chunks`, on the caller and the helpers.
    func run(chunks: Int, _ body: (Int) -> Void) {
        regions.lock()
        defer { regions.unlock() }
        withoutActuallyEscaping(body) { body in
            let region = Region(body: body, chunks: chunks)
            state.lock()
            current = region
            generation.add(1, ordering: .releasing)
            if sleepers.load(ordering: .relaxed) > 0 { state.broadcast() }
            state.unlock()
            region.work(helper: false)
            while region.finished.load(ordering: .acquiring) < chunks { Self.pause() }
            state.lock()
            current = nil
            state.unlock()
            while region.inside.load(ordering: .acquiring) > 0 { Self.pause() }
            region.body = nil
        }
    }

    private func helperLoop() {
        var seen = 0
        while true {
            let start = DispatchTime.now().uptimeNanoseconds
            while generation.load(ordering: .acquiring) == seen && DispatchTime.now().uptimeNanoseconds - start < Self.spinNanoseconds {
                Self.pause()
            }
            state.lock()
            if generation.load(ordering: .acquiring) == seen {
                sleepers.add(1, ordering: .relaxed)
                while generation.load(ordering: .acquiring) == seen { state.wait() }
                sleepers.subtract(1, ordering: .relaxed)
            }
            seen = generation.load(ordering: .acquiring)
            let region = current
            state.unlock()
            region?.work(helper: true)
        }
    }

    /// Gives the core to any other runnable thread: on a machine with more runnable threads than
    /// cores, a helper spinning on the caller's core would otherwise take half its time (the
    /// likely cause of PP-OCR classifier runs at 2.5× their one-thread time with two threads).
    @inline(__always) private static func pause() { sched_yield() }
}
