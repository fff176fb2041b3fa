import CNNG
import Foundation

/// Certificates for `tls+tcp://` endpoints (PEM files). A server needs its certificate and key;
/// a client that is given a CA verifies the server against it (and its name), otherwise it
/// encrypts without verifying. A server given a CA requires client certificates signed by it.
public struct TLSConfiguration: Sendable {
    public enum Role: Sendable { case server, client }

    public var role: Role
    public var certificate: String?
    public var key: String?
    public var certificateAuthority: String?
    /// The name a client expects in the server's certificate.
    public var serverName: String?

    public init(role: Role, certificate: String? = nil, key: String? = nil, certificateAuthority: String? = nil, serverName: String? = nil) {
        self.role = role
        self.certificate = certificate
        self.key = key
        self.certificateAuthority = certificateAuthority
        self.serverName = serverName
    }

    /// Builds nng's TLS configuration and hands it to `attach` (which sets it on an endpoint).
    func apply(_ attach: (OpaquePointer) -> Int32) throws {
        var config: OpaquePointer?
        try NNGError.check(nng_tls_config_alloc(&config, role == .server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT),
                           "setting up TLS")
        defer { nng_tls_config_free(config) }
        if role == .server && (certificate == nil || key == nil) {
            throw NNGError(Int32(NNG_EINVAL.rawValue), "a TLS server needs --tls-cert and --tls-key")
        }
        if let certificate, let key {
            try NNGError.check(nng_tls_config_own_cert(config, try Self.read(certificate), try Self.read(key), nil),
                               "loading the TLS certificate \(certificate) and key \(key)")
        }
        if let certificateAuthority {
            try NNGError.check(nng_tls_config_ca_chain(config, try Self.read(certificateAuthority), nil),
                               "loading the TLS CA \(certificateAuthority)")
            try NNGError.check(nng_tls_config_auth_mode(config, NNG_TLS_AUTH_MODE_REQUIRED), "setting TLS verification")
        } else {
            try NNGError.check(nng_tls_config_auth_mode(config, NNG_TLS_AUTH_MODE_NONE), "setting TLS verification")
        }
        if let serverName { try NNGError.check(nng_tls_config_server_name(config, serverName), "setting the TLS server name") }
        try NNGError.check(attach(config!), "attaching the TLS configuration")
    }

    private static func read(_ path: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw NNGError(Int32(NNG_ENOENT.rawValue), "reading \(path)")
        }
        return text
    }
}
