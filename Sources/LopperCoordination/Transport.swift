import Foundation
import LopperMessaging

/// Carries requests to a coordinator and its replies back. `NNGTransport` listens on nng
/// addresses (what `lopper coordinator` uses); `InMemoryTransport` is called directly, so the
/// coordinator's request handling is tested without sockets or processes.
public protocol CoordinatorTransport: Sendable {
    /// Serves until cancelled: the bytes of each request go to `handle`, and its reply goes back
    /// to the requester (`nil`: no reply, the requester waits for its resend to be answered).
    /// Throws when the transport cannot be set up, or `handle` throws.
    func serve(_ handle: @escaping @Sendable ([UInt8]) async throws -> [UInt8]?) async throws

    /// Connections that closed before delivering a message (how nng drops an oversized one).
    var droppedConnections: UInt64 { get }
}

extension CoordinatorTransport {
    public var droppedConnections: UInt64 { 0 }
}

/// The coordinator's nng side: one REP socket listening on every address, served through many
/// contexts (no thread per peer).
public final class NNGTransport: CoordinatorTransport, @unchecked Sendable {
    let listen: [String]
    let tls: TLSConfiguration?
    let maximumMessageBytes: Int
    let contexts: Int
    private let lock = NSLock()
    private var pipes: PipeMonitor?

    public init(listen: [String], tls: TLSConfiguration?, maximumMessageBytes: Int, contexts: Int) {
        self.listen = listen
        self.tls = tls
        self.maximumMessageBytes = maximumMessageBytes
        self.contexts = contexts
    }

    public var droppedConnections: UInt64 { lock.withLock { pipes?.silentlyClosed ?? 0 } }

    public func serve(_ handle: @escaping @Sendable ([UInt8]) async throws -> [UInt8]?) async throws {
        let socket = try Socket(.reply)
        try socket.setMaximumReceiveSize(maximumMessageBytes)
        let monitor = try socket.monitorPipes()
        lock.withLock { pipes = monitor }
        for address in listen { try socket.listen(address, tls: tls) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<contexts {
                let context = try Context(socket)
                group.addTask { try await Self.serve(context, monitor: monitor, handle) }
            }
            try await group.waitForAll()
        }
    }

    private static func serve(_ context: Context, monitor: PipeMonitor, _ handle: @Sendable ([UInt8]) async throws -> [UInt8]?) async throws {
        while true {
            let request: Message
            do {
                request = try await context.receive()
            } catch let error as NNGError where error.isClosed || error.isCancelled {
                return
            }
            monitor.delivered(request)
            guard let reply = try await handle(request.bytes) else { continue }
            do {
                try await context.send(try Message(reply))
            } catch let error as NNGError where error.isClosed || error.isCancelled {
                return
            } catch is NNGError {
                // The requester is gone; nng drops its reply. Nothing to do.
                continue
            }
        }
    }
}

/// A transport inside one process: `exchange` hands a request's bytes to the coordinator that
/// serves over it and returns the reply, as a peer on the wire would see it.
public final class InMemoryTransport: CoordinatorTransport, @unchecked Sendable {
    private let lock = NSLock()
    private var handle: (@Sendable ([UInt8]) async throws -> [UInt8]?)?
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public init() {}

    public func serve(_ handle: @escaping @Sendable ([UInt8]) async throws -> [UInt8]?) async throws {
        let ready = lock.withLock {
            self.handle = handle
            defer { waiting = [] }
            return waiting
        }
        for waiter in ready { waiter.resume() }
        defer { lock.withLock { self.handle = nil } }
        // Serve until cancelled.
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
    }

    /// Sends `request` and returns the coordinator's reply (nil: it sent none). Waits for a
    /// coordinator to start serving.
    public func exchange(_ request: [UInt8]) async throws -> [UInt8]? {
        while true {
            if let handle = lock.withLock({ handle }) { return try await handle(request) }
            await withCheckedContinuation { continuation in
                let ready = lock.withLock {
                    if handle != nil { return true }
                    waiting.append(continuation)
                    return false
                }
                if ready { continuation.resume() }
            }
        }
    }
}
