import ONNXProto

/// One dimension of a shape: a number, a named symbol (`"N"`, `"batch"`) or unknown.
public enum Dim: Hashable, Sendable, CustomStringConvertible {
    case value(Int)
    case symbol(String)
    case unknown

    public var value: Int? {
        if case .value(let v) = self { return v }
        return nil
    }

    public var description: String {
        switch self {
        case .value(let v): return String(v)
        case .symbol(let s): return s
        case .unknown: return "?"
        }
    }
}

/// Element type and (possibly partly symbolic, possibly unknown) shape of a value.
public struct TensorType: Hashable, Sendable, CustomStringConvertible {
    public var elementType: ElementType?
    /// `nil` when not even the rank is known.
    public var shape: [Dim]?

    public init(elementType: ElementType?, shape: [Dim]?) {
        self.elementType = elementType
        self.shape = shape
    }

    public init(_ elementType: ElementType?, _ dims: [Int]) {
        self.init(elementType: elementType, shape: dims.map { .value($0) })
    }

    /// The shape when every dimension is a number.
    public var concreteShape: [Int]? {
        guard let shape else { return nil }
        let values = shape.compactMap(\.value)
        return values.count == shape.count ? values : nil
    }

    public var rank: Int? { shape?.count }

    public var description: String {
        let dims = shape.map { "[" + $0.map(\.description).joined(separator: ",") + "]" } ?? "[?]"
        return "\(elementType.map(\.description) ?? "?")\(dims)"
    }

    /// Reads an ONNX `TypeProto`; sequence, map and optional types give `nil`.
    init?(proto: Onnx_TypeProto) {
        guard case .tensorType(let tensor)? = proto.value else { return nil }
        elementType = tensor.hasElemType ? ElementType(rawValue: tensor.elemType) : nil
        shape = tensor.hasShape ? tensor.shape.dim.map { dim in
            switch dim.value {
            case .dimValue(let v)?: return v >= 0 ? .value(Int(v)) : .unknown
            case .dimParam(let p)?: return p.isEmpty ? .unknown : .symbol(p)
            case nil: return .unknown
            }
        } : nil
    }

    /// The type as an ONNX `TypeProto`.
    public var proto: Onnx_TypeProto {
        var tensor = Onnx_TypeProto.Tensor()
        if let elementType { tensor.elemType = elementType.rawValue }
        if let shape {
            tensor.shape = Onnx_TensorShapeProto.with { proto in
                proto.dim = shape.map { dim in
                    var d = Onnx_TensorShapeProto.Dimension()
                    switch dim {
                    case .value(let v): d.dimValue = Int64(v)
                    case .symbol(let s): d.dimParam = s
                    case .unknown: break
                    }
                    return d
                }
            }
        }
        var type = Onnx_TypeProto()
        type.tensorType = tensor
        return type
    }
}

/// A named graph input, output or intermediate with its declared type.
public struct ValueInfo: Sendable {
    public var proto: Onnx_ValueInfoProto
    public var name: String { proto.name }
    /// `nil` for non-tensor values (sequences, maps) or when no type is declared.
    public var type: TensorType? { proto.hasType ? TensorType(proto: proto.type) : nil }

    public init(proto: Onnx_ValueInfoProto) { self.proto = proto }

    /// What the value is when its declared type is not a tensor ("a sequence", "a map", …).
    public var nonTensorKind: String? {
        switch proto.type.value {
        case .sequenceType?: return "a sequence"
        case .mapType?: return "a map"
        case .optionalType?: return "an optional value"
        case .sparseTensorType?: return "a sparse tensor"
        case .tensorType?, nil: return nil
        }
    }

    public init(name: String, type: TensorType) {
        proto = Onnx_ValueInfoProto()
        proto.name = name
        proto.type = type.proto
    }
}
