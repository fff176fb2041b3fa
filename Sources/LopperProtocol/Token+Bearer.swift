import Crypto
import Foundation

extension Token {
    /// Whether `secret` is this token's secret (compared in constant time): how the status page
    /// checks an HTTP client's bearer token against the sweep's token.
    public func matches(secret: String) -> Bool {
        SymmetricKey(data: Data(secret.utf8)) == key
    }
}
