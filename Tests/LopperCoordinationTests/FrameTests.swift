import Foundation
import LopperProtocol
import Testing

@Suite struct FrameTests {
    func sealedHello(_ codec: FrameCodec, counter: UInt64 = 1) throws -> [UInt8] {
        var request = Lopper_Wire_Request()
        request.hello.workerID = codec.identity
        return try codec.seal(request, to: WireProtocol.coordinator, counter: counter)
    }

    @Test func sealedFramesOpenWithTheSameTokenOnly() throws {
        let token = Token(secret: Array("s3cret".utf8))
        let worker = FrameCodec(identity: "w1", token: token)
        let coordinator = FrameCodec(identity: WireProtocol.coordinator, token: token)
        let bytes = try sealedHello(worker)
        let frame = try coordinator.open(bytes)
        #expect(frame.sender == "w1")
        #expect(try coordinator.payload(of: frame, as: Lopper_Wire_Request.self).hello.workerID == "w1")

        let stranger = FrameCodec(identity: WireProtocol.coordinator, token: Token(secret: Array("other".utf8)))
        #expect(throws: FrameRejection.badMAC) { try stranger.open(bytes) }
        // No token on the sending side: no MAC, refused by a coordinator that wants one.
        let anonymous = try sealedHello(FrameCodec(identity: "w1", token: nil))
        #expect(throws: FrameRejection.badMAC) { try coordinator.open(anonymous) }
    }

    @Test func everyAuthenticatedFieldIsCovered() throws {
        let token = Token(secret: Array("s3cret".utf8))
        let coordinator = FrameCodec(identity: WireProtocol.coordinator, token: token)
        let bytes = try sealedHello(FrameCodec(identity: "w1", token: token))
        let original = try Lopper_Wire_Frame(serializedBytes: bytes)
        let tamperings: [(inout Lopper_Wire_Frame) -> Void] = [
            { $0.sender = "w2" }, { $0.counter += 1 }, { $0.payload.append(0) }, { $0.recipient = "coordinatoR" },
        ]
        for tamper in tamperings {
            var frame = original
            tamper(&frame)
            #expect(throws: FrameRejection.self) { try coordinator.open(Array(try frame.serializedData())) }
        }
    }

    @Test func otherVersionsAndGarbageAreRefusedByName() throws {
        let coordinator = FrameCodec(identity: WireProtocol.coordinator, token: nil)
        var frame = try Lopper_Wire_Frame(serializedBytes: try sealedHello(FrameCodec(identity: "w1", token: nil)))
        frame.protocolVersion = 0
        #expect(throws: FrameRejection.version(0)) { try coordinator.open(Array(try frame.serializedData())) }
        #expect("\(FrameRejection.version(0))".contains("protocol version 0 is not supported"))
        var random = SystemRandomNumberGenerator()
        for length in [1, 7, 100, 4096] {
            let garbage = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Random bytes either fail to parse or parse into a frame of the wrong version.
            #expect(throws: FrameRejection.self) { try coordinator.open(garbage) }
        }
        let truncated = Array(try sealedHello(FrameCodec(identity: "w1", token: nil)).dropLast(3))
        #expect(throws: FrameRejection.self) { try coordinator.open(truncated) }
    }

    @Test func replayWindowTellsFreshDuplicateAndStale() {
        var window = ReplayWindow()
        #expect(window.check(1) == .fresh)
        #expect(window.check(3) == .fresh)
        #expect(window.check(2) == .fresh)  // out of order, still new
        #expect(window.check(3) == .duplicate)
        #expect(window.check(0) == .stale)
        #expect(window.check(ReplayWindow.width + 10) == .fresh)
        #expect(window.check(5) == .stale)
    }

    @Test func tokenComesFromTheFileOrTheEnvironment() throws {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("token-\(UUID().uuidString)").path
        try "abc\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try Token.load(file: file, environment: [:]) != nil)
        #expect(try Token.load(file: nil, environment: ["LOPPER_TOKEN": "xyz"]) != nil)
        #expect(try Token.load(file: nil, environment: [:]) == nil)
        try "\n".write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: Token.Unusable.self) { try Token.load(file: file, environment: [:]) }
        #expect(throws: Token.Unusable.self) { try Token.load(file: "/nonexistent/token", environment: [:]) }
    }
}
