import ArgumentParser
import LopperCoordination
import LopperMessaging

/// Authentication and TLS options shared by coordinator, worker and status.
struct NetworkOptions: ParsableArguments {
    @Option(name: .customLong("token-file"),
            help: ArgumentHelp("A file holding the shared secret every message is signed with (HMAC-SHA256); LOPPER_TOKEN otherwise.",
                               valueName: "file"))
    var tokenFile: String?

    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("PEM certificate for tls+tcp:// (required on the coordinator).", valueName: "file"))
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("PEM private key of --tls-cert.", valueName: "file"))
    var tlsKey: String?

    @Option(name: .customLong("tls-ca"), help: ArgumentHelp("PEM CA: workers verify the coordinator against it; a coordinator given one requires client certificates signed by it.", valueName: "file"))
    var tlsCA: String?

    @Option(name: .customLong("tls-server-name"), help: "The name workers expect in the coordinator's certificate.")
    var tlsServerName: String?

    func token() throws -> Token? {
        do { return try Token.load(file: tokenFile) } catch { throw ValidationError("\(error)") }
    }

    func tls(_ role: TLSConfiguration.Role) -> TLSConfiguration? {
        guard tlsCertificate != nil || tlsKey != nil || tlsCA != nil || tlsServerName != nil else { return nil }
        return TLSConfiguration(role: role, certificate: tlsCertificate, key: tlsKey, certificateAuthority: tlsCA, serverName: tlsServerName)
    }
}
