import CNNG
import Foundation

/// One nng asynchronous I/O handle bridged to Swift concurrency: `run` starts an operation and
/// suspends until nng's callback reports it done. The callback only resumes the continuation —
/// no blocking, locking beyond a few instructions, or throwing on nng's thread.
final class AsyncIO: @unchecked Sendable {
    private(set) var handle: OpaquePointer!
    private var continuation: CheckedContinuation<Int32, Never>?
    private let lock = NSLock()

    init() throws {
        var raw: OpaquePointer?
        // The callback must not take a reference: if it held the last one, the deinit (and its
        // nng_aio_free, which waits for the callback) would run on nng's thread and deadlock it.
        let code = nng_aio_alloc(&raw, { argument in
            Unmanaged<AsyncIO>.fromOpaque(argument!)._withUnsafeGuaranteedRef { $0.completed() }
        }, Unmanaged.passUnretained(self).toOpaque())
        try NNGError.check(code, "allocating an aio")
        handle = raw
    }

    /// Frees the aio; nng first stops it and waits for a running callback.
    deinit { nng_aio_free(handle) }

    /// Starts an operation on the aio and waits for its result code. Cancelling the task
    /// cancels the operation (it then completes with NNG_ECANCELED).
    func run(timeout: Duration?, _ start: (OpaquePointer) -> Void) async -> Int32 {
        nng_aio_set_timeout(handle, timeout.map(Socket.milliseconds) ?? -2)  // -2: the socket's default
        if Task.isCancelled { return Int32(NNG_ECANCELED.rawValue) }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                lock.lock()
                self.continuation = continuation
                lock.unlock()
                start(handle)
                // A cancellation that arrived before the operation started found nothing to cancel.
                if Task.isCancelled { nng_aio_cancel(handle) }
            }
        } onCancel: {
            nng_aio_cancel(handle)
        }
    }

    /// Called by nng on its own thread when the operation finishes.
    private func completed() {
        lock.lock()
        let waiting = continuation
        continuation = nil
        lock.unlock()
        waiting?.resume(returning: nng_aio_result(handle))
    }
}
