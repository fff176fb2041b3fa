import CNNG

/// An error from libnng, with the operation that failed and nng's own message.
public struct NNGError: Error, CustomStringConvertible, Equatable, Sendable {
    public let code: Int32
    public let operation: String

    init(_ code: Int32, _ operation: String) {
        self.code = code
        self.operation = operation
    }

    public var description: String { "\(operation): \(String(cString: nng_strerror(code)))" }

    public var isTimeout: Bool { code == Int32(NNG_ETIMEDOUT.rawValue) }
    public var isCancelled: Bool { code == Int32(NNG_ECANCELED.rawValue) }
    public var isClosed: Bool { code == Int32(NNG_ECLOSED.rawValue) }

    /// Throws unless `code` is 0.
    static func check(_ code: Int32, _ operation: @autoclosure () -> String) throws {
        if code != 0 { throw NNGError(code, operation()) }
    }
}
