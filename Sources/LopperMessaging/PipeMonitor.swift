import CNNG
import Foundation

/// Counts connections (nng pipes) that closed without delivering a single message. nng drops a
/// message over the receive limit by closing its connection, so oversized messages are counted
/// here; so are peers that connect and leave without sending anything.
public final class PipeMonitor: @unchecked Sendable {
    private let lock = NSLock()
    /// Open pipes, and whether each has delivered a message.
    private var open: [UInt32: Bool] = [:]
    private var dropped: UInt64 = 0

    init() {}

    /// Connections closed before delivering a message, so far.
    public var silentlyClosed: UInt64 { lock.withLock { dropped } }

    /// Marks the pipe a received message came through.
    public func delivered(_ message: borrowing Message) {
        let pipe = message.pipe
        lock.withLock { if open[pipe] != nil { open[pipe] = true } }
    }

    func event(_ pipe: UInt32, _ event: nng_pipe_ev) {
        lock.withLock {
            switch event {
            case NNG_PIPE_EV_ADD_POST:
                open[pipe] = false
            case NNG_PIPE_EV_REM_POST:
                if open.removeValue(forKey: pipe) == false { dropped += 1 }
            default:
                break
            }
        }
    }
}
