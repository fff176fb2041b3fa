import Foundation
import LopperMessaging
import LopperTesting
import Testing

@Suite struct MessagingTests {
    static func address(_ transport: String) -> String {
        let tag = UUID().uuidString.prefix(8)
        switch transport {
        case "inproc": return "inproc://lopper-\(tag)"
        case "ipc": return "ipc://\(FileManager.default.temporaryDirectory.path)/lopper-\(tag).ipc"
        default: return "tcp://127.0.0.1:\(Int.random(in: 20000...60000))"
        }
    }

    /// A reply server answering each request with its bytes reversed, on `contexts` contexts.
    static func serve(_ socket: Socket, contexts: Int, requests: Int) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            let counter = Counter(limit: requests)
            for _ in 0..<contexts {
                let context = try Context(socket)
                group.addTask {
                    while counter.take() {
                        let request = try await context.receive(timeout: .seconds(600))
                        try await context.send(try Message(request.bytes.reversed()))
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    final class Counter: @unchecked Sendable {
        private var remaining: Int
        private let lock = NSLock()
        init(limit: Int) { remaining = limit }
        func take() -> Bool {
            lock.lock(); defer { lock.unlock() }
            remaining -= 1
            return remaining >= 0
        }
    }

    @Test(arguments: ["inproc", "ipc", "tcp"])
    func requestReplyRoundTrip(transport: String) async throws {
        try await awayFromThePool { try await Self.requestReplyRoundTripOnOwnThreads(transport: transport) }
    }

    static func requestReplyRoundTripOnOwnThreads(transport: String) async throws {
        let url = Self.address(transport)
        let server = try Socket(.reply)
        try server.listen(url)
        let client = try Socket(.request)
        try client.dial(url, waitForPeer: true)
        let clients = 8, perClient = 25
        async let served: Void = Self.serve(server, contexts: 4, requests: clients * perClient)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for c in 0..<clients {
                let context = try Context(client)
                group.addTask {
                    for i in 0..<perClient {
                        let payload: [UInt8] = [UInt8(c), UInt8(i), 1, 2, 3]
                        try await context.send(try Message(payload))
                        let reply = try await context.receive(timeout: .seconds(600))
                        #expect(reply.bytes == payload.reversed())
                    }
                }
            }
            try await group.waitForAll()
        }
        try await served
    }

    @Test
    func receiveTimesOutAndCancels() async throws {
        try await awayFromThePool { try await Self.receiveTimesOutAndCancelsOnOwnThreads() }
    }

    static func receiveTimesOutAndCancelsOnOwnThreads() async throws {
        let url = Self.address("inproc")
        let server = try Socket(.reply)
        try server.listen(url)
        let context = try Context(server)
        await #expect { _ = try await context.receive(timeout: .milliseconds(50)) } throws: { ($0 as? NNGError)?.isTimeout == true }

        let waiting = Task { try await context.receive() }
        try await Task.sleep(for: .milliseconds(50))
        waiting.cancel()
        await #expect { _ = try await waiting.value } throws: { ($0 as? NNGError)?.isCancelled == true }
    }

    @Test
    func oversizedMessagesNeverArrive() async throws {
        try await awayFromThePool { try await Self.oversizedMessagesNeverArriveOnOwnThreads() }
    }

    static func oversizedMessagesNeverArriveOnOwnThreads() async throws {
        let url = Self.address("tcp")
        let server = try Socket(.reply)
        try server.setMaximumReceiveSize(1024)
        try server.listen(url)
        let client = try Socket(.request)
        try client.dial(url, waitForPeer: true)
        let sender = try Context(client)
        try await sender.send(try Message([UInt8](repeating: 7, count: 1 << 20)))
        let receiver = try Context(server)
        await #expect { _ = try await receiver.receive(timeout: .milliseconds(300)) } throws: { ($0 as? NNGError)?.isTimeout == true }
        // The server still serves honest requests on a new connection.
        let honest = try Socket(.request)
        try honest.dial(url, waitForPeer: true)
        let context = try Context(honest)
        try await context.send(try Message([1, 2]))
        let request = try await receiver.receive(timeout: .seconds(5))
        #expect(request.bytes == [1, 2])
        try await receiver.send(try Message([9]))
        #expect(try await context.receive(timeout: .seconds(5)).bytes == [9])
    }

    @Test func badAddressesAreErrors() throws {
        let socket = try Socket(.reply)
        #expect { try socket.listen("nonsense://here") } throws: { "\($0)".contains("listening on nonsense://here") }
        let other = try Socket(.reply)
        let url = Self.address("tcp")
        try socket.listen(url)
        #expect(throws: NNGError.self) { try other.listen(url) }
    }

    /// A self-signed certificate for "localhost" made with the openssl command.
    static func certificate(in directory: URL) throws -> (certificate: String, key: String) {
        let certificate = directory.appendingPathComponent("cert.pem").path, key = directory.appendingPathComponent("key.pem").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", certificate,
                             "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]
        openssl.standardError = FileHandle.nullDevice
        openssl.standardOutput = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        guard openssl.terminationStatus == 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: certificate]) }
        return (certificate, key)
    }

    @Test
    func tlsVerifiesTheServerAndCarriesMessages() async throws {
        try await awayFromThePool { try await Self.tlsVerifiesTheServerAndCarriesMessagesOnOwnThreads() }
    }

    static func tlsVerifiesTheServerAndCarriesMessagesOnOwnThreads() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lopper-tls-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let (certificate, key) = try Self.certificate(in: directory)
        let url = "tls+tcp://127.0.0.1:\(Int.random(in: 20000...60000))"
        let server = try Socket(.reply)
        try server.listen(url, tls: TLSConfiguration(role: .server, certificate: certificate, key: key))
        async let served: Void = Self.serve(server, contexts: 2, requests: 1)

        let client = try Socket(.request)
        try client.dial(url, waitForPeer: true,
                        tls: TLSConfiguration(role: .client, certificateAuthority: certificate, serverName: "localhost"))
        let context = try Context(client)
        try await context.send(try Message([1, 2, 3]))
        #expect(try await context.receive(timeout: .seconds(600)).bytes == [3, 2, 1])
        try await served

        // A client that trusts another authority refuses the server.
        let (otherCertificate, _) = try Self.certificate(in: directory.appendingPathComponent("other").creatingFolder())
        let suspicious = try Socket(.request)
        #expect(throws: NNGError.self) {
            try suspicious.dial(url, waitForPeer: true,
                                tls: TLSConfiguration(role: .client, certificateAuthority: otherCertificate, serverName: "localhost"))
        }
        // A server without its key is a configuration error, named as such.
        #expect { try Socket(.reply).listen("tls+tcp://127.0.0.1:\(Int.random(in: 20000...60000))", tls: TLSConfiguration(role: .server)) }
            throws: { "\($0)".contains("--tls-cert") }
    }
}

extension URL {
    func creatingFolder() throws -> URL {
        try FileManager.default.createDirectory(at: self, withIntermediateDirectories: true)
        return self
    }
}
