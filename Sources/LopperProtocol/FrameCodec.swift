import Crypto
import Foundation
import SwiftProtobuf

public enum WireProtocol {
    /// Bumped on any incompatible change to lopper_wire.proto or the frame layout.
    public static let version: UInt32 = 1
    /// The `sender` of replies and the `recipient` of requests.
    public static let coordinator = "coordinator"
}

/// Why an incoming frame was refused. `counter` names it in the coordinator's statistics.
public enum FrameRejection: Error, CustomStringConvertible, Equatable {
    case malformed(String)
    case version(UInt32)
    case badMAC
    case misaddressed(String)
    /// A counter already used, or older than the replay window.
    case replay(UInt64)
    /// A worker that joined another sweep (other inputs or settings).
    case unknownSweep(String)

    public var counter: String {
        switch self {
        case .malformed: return "malformed"
        case .version: return "version"
        case .badMAC: return "bad-mac"
        case .misaddressed: return "misaddressed"
        case .replay: return "replay"
        case .unknownSweep: return "unknown-sweep"
        }
    }

    public var description: String {
        switch self {
        case .malformed(let why): return "malformed message: \(why)"
        case .version(let version):
            return "protocol version \(version) is not supported (this side speaks version \(WireProtocol.version)); run the same Lopper release on both sides"
        case .badMAC: return "authentication failed: the message's HMAC does not match the shared token (check --token-file / LOPPER_TOKEN)"
        case .misaddressed(let to): return "message addressed to '\(to)', not to this side"
        case .replay(let counter): return "message counter \(counter) was used before (a replayed message)"
        case .unknownSweep(let sweep): return "this coordinator does not run sweep \(sweep.prefix(12)); restart the worker"
        }
    }
}

/// The shared secret both sides prove with HMAC-SHA256.
public struct Token: @unchecked Sendable {  // SymmetricKey is immutable
    let key: SymmetricKey

    public init(secret: some DataProtocol) { key = SymmetricKey(data: Data(secret)) }

    /// A token file or variable that cannot be used.
    public struct Unusable: Error, CustomStringConvertible {
        public var description: String
    }

    /// The token from `file` (surrounding newlines ignored), else from `LOPPER_TOKEN`, else none.
    public static func load(file: String?, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Token? {
        let text: String
        if let file {
            guard let contents = try? String(contentsOfFile: file, encoding: .utf8) else {
                throw Unusable(description: "the token file \(file) cannot be read")
            }
            text = contents
        } else if let value = environment["LOPPER_TOKEN"] {
            text = value
        } else {
            return nil
        }
        let secret = text.trimmingCharacters(in: .newlines)
        guard !secret.isEmpty else {
            throw Unusable(description: "the token \(file.map { "file \($0)" } ?? "in LOPPER_TOKEN") is empty; put the shared secret in it (e.g. openssl rand -hex 32)")
        }
        return Token(secret: Array(secret.utf8))
    }
}

/// Seals payloads into frames and opens frames, checking version, address and HMAC.
public struct FrameCodec: Sendable {
    public let token: Token?
    /// Who this side is: frames it opens must be addressed to it.
    public let identity: String

    public init(identity: String, token: Token?) {
        self.identity = identity
        self.token = token
    }

    public func seal(_ payload: some SwiftProtobuf.Message, to recipient: String, counter: UInt64) throws -> [UInt8] {
        var frame = Lopper_Wire_Frame()
        frame.protocolVersion = WireProtocol.version
        frame.sender = identity
        frame.recipient = recipient
        frame.counter = counter
        frame.payload = try payload.serializedData()
        if let token { frame.mac = Data(Self.mac(frame, key: token.key)) }
        return Array(try frame.serializedData())
    }

    /// An unauthenticated refusal, readable by a peer whose token or version is wrong.
    public static func rejection(_ reason: FrameRejection, to recipient: String, counter: UInt64) -> [UInt8] {
        var rejected = Lopper_Wire_Rejected()
        rejected.reason = reason.description
        rejected.protocolVersion = WireProtocol.version
        var reply = Lopper_Wire_Reply()
        reply.rejected = rejected
        var frame = Lopper_Wire_Frame()
        frame.protocolVersion = WireProtocol.version
        frame.sender = WireProtocol.coordinator
        frame.recipient = recipient
        frame.counter = counter
        frame.payload = (try? reply.serializedData()) ?? Data()
        return Array((try? frame.serializedData()) ?? Data())
    }

    /// Decodes and checks a frame. The payload is left serialized (decode it with `payload(of:)`).
    public func open(_ bytes: [UInt8]) throws(FrameRejection) -> Lopper_Wire_Frame {
        let frame: Lopper_Wire_Frame
        do { frame = try Lopper_Wire_Frame(serializedBytes: bytes) } catch { throw .malformed("not a Lopper frame (\(bytes.count) bytes)") }
        guard frame.protocolVersion == WireProtocol.version else { throw .version(frame.protocolVersion) }
        if let token {
            guard frame.mac.count == SHA256.byteCount,
                  HMAC<SHA256>.isValidAuthenticationCode(frame.mac, authenticating: Self.authenticated(frame), using: token.key)
            else { throw .badMAC }
        }
        guard frame.recipient == identity else { throw .misaddressed(frame.recipient) }
        return frame
    }

    public func payload<M: SwiftProtobuf.Message>(of frame: Lopper_Wire_Frame, as type: M.Type) throws(FrameRejection) -> M {
        do { return try M(serializedBytes: frame.payload) } catch { throw .malformed("the payload is not a valid \(M.protoMessageName)") }
    }

    /// The bytes the HMAC covers: a domain tag, then every field but the MAC, length-prefixed,
    /// integers big-endian (Docs/protocol.md).
    static func authenticated(_ frame: Lopper_Wire_Frame) -> Data {
        var bytes = Data("lopper-wire".utf8)
        func append<I: FixedWidthInteger>(_ value: I) { withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) } }
        append(frame.protocolVersion)
        for text in [frame.sender, frame.recipient] {
            append(UInt32(text.utf8.count))
            bytes.append(contentsOf: Array(text.utf8))
        }
        append(frame.counter)
        append(UInt64(frame.payload.count))
        bytes.append(frame.payload)
        return bytes
    }

    static func mac(_ frame: Lopper_Wire_Frame, key: SymmetricKey) -> HMAC<SHA256>.MAC {
        HMAC<SHA256>.authenticationCode(for: authenticated(frame), using: key)
    }
}

/// Replay protection for one sender: counters must be new, within a sliding window above the
/// oldest one still remembered. A counter seen before is a duplicate (nng resends a request
/// that got no reply in time); one older than the window is stale.
public struct ReplayWindow: Sendable {
    public enum Verdict: Equatable, Sendable { case fresh, duplicate, stale }

    public static let width: UInt64 = 4096
    private var highest: UInt64 = 0
    private var seen = Set<UInt64>()

    public init() {}

    public mutating func check(_ counter: UInt64) -> Verdict {
        if counter == 0 || (highest >= Self.width && counter <= highest - Self.width) { return .stale }
        if seen.contains(counter) { return .duplicate }
        seen.insert(counter)
        if counter > highest {
            highest = counter
            if seen.count > Int(Self.width) { seen = seen.filter { $0 > highest - Self.width } }
        }
        return .fresh
    }
}
