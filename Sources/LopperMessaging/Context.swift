import CNNG

/// One conversation on a socket: a request and its reply. A reply socket serves many requests at
/// once through many contexts, so no thread is held per peer.
public final class Context: @unchecked Sendable {
    private let raw: nng_ctx
    /// Keeps the socket open while the context lives.
    public let socket: Socket
    private let sending: AsyncIO
    private let receiving: AsyncIO

    public init(_ socket: Socket) throws {
        var context = nng_ctx()
        try NNGError.check(nng_ctx_open(&context, socket.raw), "opening a context")
        raw = context
        self.socket = socket
        sending = try AsyncIO()
        receiving = try AsyncIO()
    }

    deinit { nng_ctx_close(raw) }

    /// Sends a message. On success nng owns it; on failure it is freed and the error thrown.
    public func send(_ message: consuming Message, timeout: Duration? = nil) async throws {
        let pointer = message.release()
        nng_aio_set_msg(sending.handle, pointer)
        let code = await sending.run(timeout: timeout) { nng_ctx_send(raw, $0) }
        if code != 0 {
            // nng returns ownership of a message it could not send.
            nng_msg_free(pointer)
            throw NNGError(code, "sending")
        }
    }

    /// Waits for the next message (a request on a reply socket, the reply on a request socket).
    public func receive(timeout: Duration? = nil) async throws -> Message {
        let code = await receiving.run(timeout: timeout) { nng_ctx_recv(raw, $0) }
        try NNGError.check(code, "receiving")
        return Message(owning: nng_aio_get_msg(receiving.handle))
    }
}
