import Foundation

/// The clock runs and steps are timed with. A run on one thread is all on the calling thread,
/// so its CPU time (`CLOCK_THREAD_CPUTIME_ID`) is the work alone, without the time other
/// processes of a loaded machine held the core; with more threads, wall time.
public struct RunClock: Sendable {
    let threadTime: Bool

    public init(threads: Int) { threadTime = threads == 1 }

    /// Seconds since an arbitrary origin.
    public func now() -> Double {
        guard threadTime else { return Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}
