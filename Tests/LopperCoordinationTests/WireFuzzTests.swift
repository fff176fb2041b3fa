import Foundation
import Logging
import LopperCoordination
import LopperMessaging
import LopperModel
import LopperProtocol
import LopperSensitivity
import LopperTesting
import Testing

/// Mutated and forged wire frames against a live coordinator in this process: random bytes,
/// bit flips, truncations, wrong versions, recipients and worker ids, replays, and requests
/// sealed with the right token but random contents (results with files named to escape).
/// Every frame must be answered (a refusal or a reply) within its timeout, and the coordinator
/// must keep serving. See Docs/reliability.md.
@Suite struct WireFuzzTests {
    static let frames = 10_200

    enum Kind: CaseIterable {
        case randomBytes, bitFlips, truncation, wrongVersion, wrongRecipient, impostor, replay, forgedRequest, foreignPayload
    }

    @Test func mutatedAndForgedFramesAreAnsweredAndSurvived() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var spec = try SweepSpec.load(yaml: ProcessCluster.config)
        spec.criteria = ["l1"]
        let setup = try SweepSetup(spec: spec)
        let offer = try SweepOffer(setup: setup)
        let address = "ipc://\(directory.path)/fuzz.ipc"
        let secret = Array("fuzz-secret".utf8)
        var options = Coordinator.Options(listen: [address], token: Token(secret: secret))
        // Leases given to forged workers stay theirs for the whole pass.
        options.leaseSeconds = 3600
        options.heartbeatSeconds = 1
        // Thousands of refusals are expected: keep them out of the test log.
        var quiet = Logger(label: "fuzz.coordinator")
        quiet.logLevel = .critical
        let coordinator = try Coordinator(store: try setup.openStore(at: directory.appendingPathComponent("fuzz.db").path),
                                          offer: offer, options: options, logger: quiet)
        let serving = Task { try await coordinator.run() }
        defer { serving.cancel() }

        let socket = try Socket(.request)
        try socket.setResendTime(.seconds(60))
        try socket.setReconnect(minimum: .milliseconds(10), maximum: .milliseconds(100))
        // The coordinator may not listen yet: nng connects when it does, and the first send waits.
        try socket.dial(address, waitForPeer: false)
        var random = SeededGenerator(seed: 10)
        let honest = FrameCodec(identity: "fuzzer", token: Token(secret: secret))
        var counters: [String: UInt64] = [:]
        func nextCounter(_ sender: String) -> UInt64 {
            counters[sender, default: 0] += 1
            return counters[sender]!
        }
        var sent: [Kind: Int] = [:], answered = 0, refused = 0, unanswered = 0
        var lastSealed = try honest.seal(Self.status, to: WireProtocol.coordinator, counter: nextCounter("fuzzer"))
        for round in 0..<Self.frames {
            let kind = Kind.allCases[round % Kind.allCases.count]
            sent[kind, default: 0] += 1
            let sender = "forged-\(Int.random(in: 0..<40, using: &random))"
            let codec = FrameCodec(identity: sender, token: Token(secret: secret))
            var bytes: [UInt8]
            switch kind {
            case .randomBytes:
                bytes = (0..<Int.random(in: 0...512, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            case .bitFlips:
                bytes = try codec.seal(Self.request(offer, sender: sender, using: &random), to: WireProtocol.coordinator, counter: nextCounter(sender))
                for _ in 0..<Int.random(in: 1...4, using: &random) { bytes[Int.random(in: 0..<bytes.count, using: &random)] ^= 1 << UInt8.random(in: 0..<8, using: &random) }
            case .truncation:
                bytes = try codec.seal(Self.request(offer, sender: sender, using: &random), to: WireProtocol.coordinator, counter: nextCounter(sender))
                bytes.removeLast(Int.random(in: 1..<bytes.count, using: &random))
            case .wrongVersion, .wrongRecipient:
                var frame = try Lopper_Wire_Frame(serializedBytes: try codec.seal(Self.request(offer, sender: sender, using: &random),
                                                                                 to: WireProtocol.coordinator, counter: nextCounter(sender)))
                if kind == .wrongVersion { frame.protocolVersion = UInt32.random(in: 2...UInt32.max, using: &random) } else { frame.recipient = "someone-else" }
                bytes = Array(try frame.serializedData())
            case .impostor:
                // A request naming another worker than its sender.
                var request = Lopper_Wire_Request()
                request.heartbeat.workerID = "victim"
                bytes = try codec.seal(request, to: WireProtocol.coordinator, counter: nextCounter(sender))
            case .replay:
                bytes = lastSealed
            case .forgedRequest:
                bytes = try codec.seal(Self.request(offer, sender: sender, using: &random), to: WireProtocol.coordinator, counter: nextCounter(sender))
            case .foreignPayload:
                var chunk = Lopper_Wire_BlobChunk()
                chunk.data = Data((0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
                bytes = try codec.seal(chunk, to: WireProtocol.coordinator, counter: nextCounter(sender))
            }
            if kind == .forgedRequest { lastSealed = bytes }
            let context = try Context(socket)
            // The first send waits for the coordinator to listen, however long that takes on a busy machine.
            try await context.send(try Message(bytes), timeout: round == 0 ? nil : .seconds(10))
            guard let reply = try? await context.receive(timeout: .seconds(10)) else {
                unanswered += 1
                continue
            }
            answered += 1
            if let frame = try? Lopper_Wire_Frame(serializedBytes: reply.bytes), let answer = try? Lopper_Wire_Reply(serializedBytes: frame.payload),
               case .rejected? = answer.kind {
                refused += 1
            }
        }
        print("wire fuzz: \(Self.frames) frames (\(Kind.allCases.map { "\($0) \(sent[$0] ?? 0)" }.joined(separator: ", "))); answered \(answered), refused \(refused), unanswered \(unanswered)")
        #expect(unanswered == 0, "frames without an answer within 10 s: \(unanswered)")
        #expect(refused > Self.frames / 2)
        // Still serving: an honest status request is answered.
        let context = try Context(socket)
        try await context.send(try Message(try honest.seal(Self.status, to: WireProtocol.coordinator, counter: nextCounter("fuzzer"))))
        let reply = try honest.open(try await context.receive(timeout: .seconds(10)).bytes)
        let status = try honest.payload(of: reply, as: Lopper_Wire_Reply.self)
        guard case .status(let counters)? = status.kind else { Issue.record("no status: \(status)"); return }
        #expect(counters.jobsTotal == UInt64(offer.jobCount) && !counters.rejected.isEmpty)
        print("wire fuzz: coordinator refused \(counters.rejected.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))")
    }

    static var status: Lopper_Wire_Request {
        var request = Lopper_Wire_Request()
        request.status = Lopper_Wire_StatusRequest()
        return request
    }

    /// A well-formed request with random contents: a real or made-up sweep id, job ids and
    /// keys, blob hashes and ranges.
    static func request(_ offer: SweepOffer, sender: String, using random: inout SeededGenerator) -> Lopper_Wire_Request {
        var request = Lopper_Wire_Request()
        let sweepID = Bool.random(using: &random) ? offer.sweepID : String(repeating: "f", count: Int.random(in: 0...64, using: &random))
        let ids = (0..<Int.random(in: 0...4, using: &random)).map { _ in Int64.random(in: -5...400, using: &random) }
        switch Int.random(in: 0..<6, using: &random) {
        case 0:
            request.hello.workerID = sender
            request.hello.slots = UInt32.random(in: 0...1000, using: &random)
            request.hello.cores = UInt32.random(in: 0...UInt32.max, using: &random)
        case 1:
            request.lease.workerID = sender
            request.lease.sweepID = sweepID
            request.lease.want = UInt32.random(in: 0...3, using: &random)
            request.lease.cachedGroups = (0..<Int.random(in: 0...3, using: &random)).map { _ in Int32.random(in: -2...30, using: &random) }
            request.lease.results = ids.map { id in
                var result = Lopper_Wire_JobResult()
                result.jobID = id
                result.jobKey = "g\(Int.random(in: 0...30, using: &random))/made-up"
                result.score = [0, -1, .nan, .infinity, 1e308].randomElement(using: &random)!
                result.error = Bool.random(using: &random) ? "" : "forged failure"
                // Produced files named to escape the folder they would be written to.
                result.files = (0..<Int.random(in: 0...2, using: &random)).map { _ in
                    var file = Lopper_Wire_ResultFile()
                    file.name = ["", ".", "..", "../model.onnx", "/etc/passwd", "a/b", "model.onnx", "x\u{0}y"].randomElement(using: &random)!
                    file.data = Data((0..<Int.random(in: 0...64, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) })
                    return file
                }
                return result
            }
            if Bool.random(using: &random) { request.lease.baseline = [0.5, .nan, -.infinity].randomElement(using: &random)! }
        case 2:
            request.heartbeat.workerID = sender
            request.heartbeat.jobIds = ids
        case 3:
            let blob = offer.blobs.randomElement(using: &random)!
            request.blob.sha256 = Bool.random(using: &random) ? blob.sha256 : ["", "../../etc/passwd", String(repeating: "0", count: 64)].randomElement(using: &random)!
            request.blob.offset = [0, UInt64(blob.size), UInt64(blob.size) + 1, UInt64.max, UInt64.random(in: 0...UInt64(blob.size), using: &random)].randomElement(using: &random)!
            request.blob.length = [0, 1, 4096, UInt32.max].randomElement(using: &random)!
        case 4:
            request.status = Lopper_Wire_StatusRequest()
        default:
            request.goodbye.workerID = sender
            request.goodbye.jobIds = ids
        }
        return request
    }
}
