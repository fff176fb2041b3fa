/// An error about a model, naming where it happened: the file, the node and the field.
///
/// Every failure while loading, checking or analysing a model is reported with this type so the
/// command line can print one line a user can act on, e.g.
/// `model.onnx: node 'conv1' (Conv): attribute 'group' must be INT, found FLOATS`.
public struct ModelError: Error, CustomStringConvertible, Equatable, Sendable {
    public var file: String?
    public var node: String?
    public var field: String?
    public var message: String

    public init(_ message: String, file: String? = nil, node: String? = nil, field: String? = nil) {
        self.message = message
        self.file = file
        self.node = node
        self.field = field
    }

    public var description: String {
        var parts: [String] = []
        if let file { parts.append(file) }
        if let node { parts.append("node \(node)") }
        if let field { parts.append(field) }
        parts.append(message)
        return parts.joined(separator: ": ")
    }

    /// Fills in the file name unless an inner layer already did.
    public func inFile(_ path: String) -> ModelError {
        var copy = self
        if copy.file == nil { copy.file = path }
        return copy
    }
}

extension Error {
    /// Attaches a file name to a `ModelError`; other errors become one.
    func asModelError(file: String) -> ModelError {
        if let error = self as? ModelError { return error.inFile(file) }
        return ModelError("\(self)", file: file)
    }
}
