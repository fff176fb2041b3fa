import Foundation
import LopperMessaging
import LopperProtocol

/// A worker's (or `lopper status`'s) connection to a coordinator: sealed requests out, checked
/// replies back. nng resends a request that got no reply (after a reconnect, say) with the same
/// counter, which the coordinator recognises; a coordinator that stays silent longer than
/// `patience` is given up on.
public final class CoordinatorLink: @unchecked Sendable {
    public enum Failure: Error, CustomStringConvertible {
        case rejected(String)
        case unreachable(String, seconds: Double)
        /// No connection could be made: nothing listens at the address (or TLS/transport failed).
        case nothingAnswers(String, seconds: Double)
        case unexpected(String)

        public var description: String {
            switch self {
            case .rejected(let reason): return "the coordinator refused: \(reason)"
            case .unreachable(let address, let seconds): return "no answer from the coordinator at \(address) for \(Int(seconds)) s"
            case .unexpected(let what): return "unexpected reply from the coordinator: \(what)"
            case .nothingAnswers(let address, let seconds):
                return "nothing answers at \(address): no connection within \(Int(seconds.rounded(.up))) s (is a coordinator listening there, with the same transport and TLS settings?)"
            }
        }
    }

    public let identity: String
    public let address: String
    let socket: Socket
    let codec: FrameCodec
    let patience: Double
    /// Message counter. It starts at the clock in microseconds, so a worker restarted under the
    /// same id continues above the counters its previous run used.
    private var counter = UInt64(Date().timeIntervalSince1970 * 1_000_000)
    private let lock = NSLock()

    public init(address: String, identity: String, token: Token?, tls: TLSConfiguration? = nil,
                patience: Double = 600, resendSeconds: Double = 2, maximumReplyBytes: Int = 64 << 20) throws {
        self.identity = identity
        self.address = address
        self.patience = patience
        codec = FrameCodec(identity: identity, token: token)
        socket = try Socket(.request)
        try socket.setMaximumReceiveSize(maximumReplyBytes)
        try socket.setReconnect(minimum: .milliseconds(100), maximum: .seconds(2))
        try socket.setResendTime(.milliseconds(Int(resendSeconds * 1000)))
        try socket.dial(address, waitForPeer: false, tls: tls)
    }

    /// Sends `request` and waits for its reply. A `Rejected` reply is thrown.
    public func call(_ request: Lopper_Wire_Request) async throws -> Lopper_Wire_Reply {
        let number = lock.withLock { () -> UInt64 in
            counter += 1
            return counter
        }
        let sealed = try codec.seal(request, to: WireProtocol.coordinator, counter: number)
        let context = try Context(socket)
        do {
            // A request is sent once a connection exists: a timeout here means there is none.
            try await context.send(try Message(sealed), timeout: .milliseconds(Int(patience * 1000)))
        } catch let error as NNGError where error.isTimeout {
            throw Failure.nothingAnswers(address, seconds: patience)
        }
        let bytes: [UInt8]
        do {
            bytes = try await context.receive(timeout: .milliseconds(Int(patience * 1000))).bytes
        } catch let error as NNGError where error.isTimeout {
            throw Failure.unreachable(address, seconds: patience)
        }
        let reply = try open(bytes, counter: number)
        if case .rejected(let rejected)? = reply.kind { throw Failure.rejected(rejected.reason) }
        return reply
    }

    /// The coordinator's counters.
    public func status() async throws -> CoordinatorStatus {
        var request = Lopper_Wire_Request()
        request.status = Lopper_Wire_StatusRequest()
        guard case .status(let status)? = try await call(request).kind else {
            throw Failure.unexpected("no status in reply to a status request")
        }
        return CoordinatorStatus(wire: status)
    }

    /// Checks a reply: a readable refusal is taken as is (it cannot be authenticated when the
    /// token or version is what is wrong); anything else must carry a valid HMAC and our counter.
    private func open(_ bytes: [UInt8], counter: UInt64) throws -> Lopper_Wire_Reply {
        if let loose = try? Lopper_Wire_Frame(serializedBytes: bytes),
           let reply = try? Lopper_Wire_Reply(serializedBytes: loose.payload), case .rejected? = reply.kind {
            return reply
        }
        let frame: Lopper_Wire_Frame
        do { frame = try codec.open(bytes) } catch { throw Failure.unexpected("\(error)") }
        guard frame.counter == counter, frame.sender == WireProtocol.coordinator else {
            throw Failure.unexpected("a reply to message \(frame.counter) from '\(frame.sender)' while waiting for \(counter)")
        }
        do { return try codec.payload(of: frame, as: Lopper_Wire_Reply.self) } catch { throw Failure.unexpected("\(error)") }
    }
}
