import CNNG

/// An nng message, owned by exactly one holder at a time.
///
/// The type cannot be copied: whoever holds it owns the nng buffer, and `deinit` frees it. Sending
/// consumes the message: on success nng owns it from then on, on failure the send frees it.
public struct Message: ~Copyable {
    private let pointer: OpaquePointer

    /// A message holding a copy of `bytes`.
    public init(_ bytes: [UInt8]) throws {
        var raw: OpaquePointer?
        try NNGError.check(nng_msg_alloc(&raw, 0), "allocating a message")
        let code = bytes.withUnsafeBytes { nng_msg_append(raw, $0.baseAddress, $0.count) }
        if code != 0 {
            nng_msg_free(raw)
            throw NNGError(code, "filling a message")
        }
        pointer = raw!
    }

    /// Takes ownership of a message nng handed over.
    init(owning pointer: OpaquePointer) {
        self.pointer = pointer
    }

    /// The message body.
    public var bytes: [UInt8] {
        let count = nng_msg_len(pointer)
        guard count > 0, let body = nng_msg_body(pointer) else { return [] }
        return Array(UnsafeRawBufferPointer(start: body, count: count))
    }

    public var count: Int { nng_msg_len(pointer) }

    /// The connection (nng pipe) a received message came through.
    public var pipe: UInt32 { nng_msg_get_pipe(pointer).id }

    /// Gives up ownership: the caller must hand the pointer to nng or free it.
    consuming func release() -> OpaquePointer {
        let raw = pointer
        discard self
        return raw
    }

    deinit { nng_msg_free(pointer) }
}
