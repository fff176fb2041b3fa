import CNNG
import Dispatch

/// An nng socket of the request/reply protocol (REQ0 or REP0).
///
/// Listening and dialling may be repeated (one socket serves many peers); a dial with
/// `waitForPeer: false` returns at once and keeps reconnecting in the background, backing off
/// between `reconnect` bounds. Releasing the last reference closes the socket, which fails every
/// operation still waiting with NNG_ECLOSED.
public final class Socket: @unchecked Sendable {
    public enum Kind: Sendable {
        /// Sends requests and receives their replies; resends a request after `resendTime`.
        case request
        /// Receives requests and sends replies.
        case reply
    }

    let raw: nng_socket
    public let kind: Kind

    public init(_ kind: Kind) throws {
        var socket = nng_socket()
        try NNGError.check(kind == .request ? nng_req0_open(&socket) : nng_rep0_open(&socket), "opening a \(kind) socket")
        raw = socket
        self.kind = kind
    }

    /// nng_close blocks until nng has wound the socket down; it must never hold one of Swift
    /// concurrency's few cooperative threads, so it runs on a queue of its own.
    deinit {
        let socket = raw, monitor = monitor
        // The monitor must outlive the close: nng reports every pipe's removal during it.
        Self.closing.async { nng_close(socket); withExtendedLifetime(monitor) {} }
    }

    private var monitor: PipeMonitor?

    /// Starts counting connections that close without delivering a message (see `PipeMonitor`).
    /// Call before listening.
    public func monitorPipes() throws -> PipeMonitor {
        let monitor = PipeMonitor()
        let context = Unmanaged.passUnretained(monitor).toOpaque()
        for event in [NNG_PIPE_EV_ADD_POST, NNG_PIPE_EV_REM_POST] {
            try NNGError.check(nng_pipe_notify(raw, event, { pipe, event, argument in
                Unmanaged<PipeMonitor>.fromOpaque(argument!)._withUnsafeGuaranteedRef { $0.event(pipe.id, event) }
            }, context), "watching connections")
        }
        self.monitor = monitor
        return monitor
    }

    private static let closing = DispatchQueue(label: "lopper.nng.close")

    /// Accepts peers at `url` (`tcp://0.0.0.0:7450`, `ipc:///tmp/x.ipc`, `inproc://name`,
    /// `tls+tcp://0.0.0.0:7450` with `tls`).
    public func listen(_ url: String, tls: TLSConfiguration? = nil) throws {
        var listener = nng_listener()
        try NNGError.check(nng_listener_create(&listener, raw, url), "listening on \(url)")
        if let tls { try tls.apply { nng_listener_set_ptr(listener, NNG_OPT_TLS_CONFIG, UnsafeMutableRawPointer($0)) } }
        try NNGError.check(nng_listener_start(listener, 0), "listening on \(url)")
    }

    /// Connects to `url`. With `waitForPeer: false` the first connection is made in the
    /// background, so a worker may start before its coordinator.
    public func dial(_ url: String, waitForPeer: Bool = false, tls: TLSConfiguration? = nil) throws {
        var dialer = nng_dialer()
        try NNGError.check(nng_dialer_create(&dialer, raw, url), "dialling \(url)")
        if let tls { try tls.apply { nng_dialer_set_ptr(dialer, NNG_OPT_TLS_CONFIG, UnsafeMutableRawPointer($0)) } }
        try NNGError.check(nng_dialer_start(dialer, waitForPeer ? 0 : Int32(NNG_FLAG_NONBLOCK)), "dialling \(url)")
    }

    /// Largest message accepted; larger ones are dropped by nng before they reach the program.
    public func setMaximumReceiveSize(_ bytes: Int) throws {
        try NNGError.check(nng_socket_set_size(raw, NNG_OPT_RECVMAXSZ, bytes), "setting the receive size limit")
    }

    /// Reconnection backoff for dialled peers: starts at `minimum`, doubles up to `maximum`.
    public func setReconnect(minimum: Duration, maximum: Duration) throws {
        try NNGError.check(nng_socket_set_ms(raw, NNG_OPT_RECONNMINT, Self.milliseconds(minimum)), "setting reconnect time")
        try NNGError.check(nng_socket_set_ms(raw, NNG_OPT_RECONNMAXT, Self.milliseconds(maximum)), "setting reconnect time")
    }

    /// For request sockets: resend a request that got no reply after this long.
    public func setResendTime(_ time: Duration) throws {
        try NNGError.check(nng_socket_set_ms(raw, NNG_OPT_REQ_RESENDTIME, Self.milliseconds(time)), "setting resend time")
    }

    static func milliseconds(_ duration: Duration) -> nng_duration {
        Int32(clamping: duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }
}
