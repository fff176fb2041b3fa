import CNNG
import Dispatch

/// An nng socket of the request/reply protocol (REQ0 or REP0).
///
/// Listening and dialling may be repeated (one socket serves many peers); a dial with
/// `waitForPeer: false` returns at once and keeps reconnecting in the background, backing off
/// between `reconnect` bounds. Closing the socket (or releasing the last reference) fails every
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
        let socket = raw
        Self.closing.async { nng_close(socket) }
    }

    private static let closing = DispatchQueue(label: "lopper.nng.close")

    /// Accepts peers at `url` (`tcp://0.0.0.0:7450`, `ipc:///tmp/x.ipc`, `inproc://name`,
    /// `tls+tcp://0.0.0.0:7450` with `tls`).
    @discardableResult
    public func listen(_ url: String, tls: TLSConfiguration? = nil) throws -> Listener {
        var listener = nng_listener()
        try NNGError.check(nng_listener_create(&listener, raw, url), "listening on \(url)")
        if let tls { try tls.apply { nng_listener_set_ptr(listener, NNG_OPT_TLS_CONFIG, UnsafeMutableRawPointer($0)) } }
        try NNGError.check(nng_listener_start(listener, 0), "listening on \(url)")
        return Listener(raw: listener)
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

    /// Closes the socket now (from a thread that may block): every waiting operation fails with NNG_ECLOSED.
    public func close() { nng_close(raw) }

    static func milliseconds(_ duration: Duration) -> nng_duration {
        Int32(clamping: duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000)
    }
}

/// A socket's listening endpoint; its statistics count what nng refused before the program saw it.
public struct Listener: Sendable {
    let raw: nng_listener

    /// Connections nng closed because of an error on them (an oversized message, a protocol
    /// violation, a failed TLS handshake): the listener's error counters, summed.
    public func droppedConnections() -> UInt64 {
        var root: OpaquePointer?
        guard nng_stats_get(&root) == 0, let root else { return 0 }
        defer { nng_stats_free(root) }
        guard let mine = nng_stat_find_listener(root, raw) else { return 0 }
        return ["other", "proto", "auth", "oom", "reject"].reduce(UInt64(0)) { sum, name in
            sum + (name.withCString { nng_stat_find(mine, $0) }.map { nng_stat_value($0) } ?? 0)
        }
    }
}
