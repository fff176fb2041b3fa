import LopperModel

/// The window attributes shared by Conv, ConvTranspose and the pools, with the spec's defaults.
struct WindowAttributes {
    var autoPad: String
    var kernelShape: [Int]?
    var strides: [Int]?
    var dilations: [Int]?
    /// Begin pads for every spatial axis, then end pads.
    var pads: [Int]?

    init(_ node: Node) throws {
        autoPad = try node.string("auto_pad", default: "NOTSET")
        guard ["NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER"].contains(autoPad) else {
            throw ModelError("'\(autoPad)' is not a padding mode", field: "attribute 'auto_pad'")
        }
        kernelShape = try node.ints("kernel_shape")
        strides = try node.ints("strides")
        dilations = try node.ints("dilations")
        pads = try node.ints("pads")
    }

    /// Strides, dilations and explicit pads for `spatial` axes, checked for length.
    func resolved(spatial: Int) throws -> (strides: [Int], dilations: [Int], pads: [Int]) {
        let s = strides ?? [Int](repeating: 1, count: spatial)
        let d = dilations ?? [Int](repeating: 1, count: spatial)
        let p = pads ?? [Int](repeating: 0, count: 2 * spatial)
        guard s.count == spatial, d.count == spatial, p.count == 2 * spatial else {
            throw ModelError("strides \(s), dilations \(d) and pads \(p) do not fit \(spatial) spatial axes")
        }
        guard s.allSatisfy({ $0 > 0 }), d.allSatisfy({ $0 > 0 }), p.allSatisfy({ $0 >= 0 }) else {
            throw ModelError("strides and dilations must be positive and pads not negative")
        }
        return (s, d, p)
    }
}

/// Output size and padding of a sliding window along each spatial axis.
struct Window {
    var input: [Int]
    var kernel: [Int]
    var strides: [Int]
    var dilations: [Int]
    var padBegin: [Int]
    var padEnd: [Int]
    var output: [Int]

    var spatial: Int { input.count }

    /// - Parameter ceilMode: pools may round the output size up (ceil_mode = 1).
    init(input: [Int], kernel: [Int], attributes: WindowAttributes, ceilMode: Bool = false) throws {
        let n = input.count
        guard kernel.count == n else { throw ModelError("kernel shape \(kernel) does not fit input spatial size \(input)") }
        let (s, d, p) = try attributes.resolved(spatial: n)
        self.input = input
        self.kernel = kernel
        strides = s
        dilations = d
        padBegin = Array(p[0..<n])
        padEnd = Array(p[n...])
        output = []
        for axis in 0..<n {
            let extent = d[axis] * (kernel[axis] - 1) + 1
            var out: Int
            switch attributes.autoPad {
            case "SAME_UPPER", "SAME_LOWER":
                out = (input[axis] + s[axis] - 1) / s[axis]
                let total = Swift.max((out - 1) * s[axis] + extent - input[axis], 0)
                padBegin[axis] = attributes.autoPad == "SAME_UPPER" ? total / 2 : total - total / 2
                padEnd[axis] = total - padBegin[axis]
            case "VALID":
                padBegin[axis] = 0
                padEnd[axis] = 0
                out = input[axis] >= extent ? (input[axis] - extent) / s[axis] + 1 : 0
            default:
                let span = input[axis] + p[axis] + p[axis + n] - extent
                if ceilMode {
                    out = (span + s[axis] - 1) / s[axis] + 1
                    // The last window must start inside the input or the begin padding.
                    if (out - 1) * s[axis] >= input[axis] + p[axis] { out -= 1 }
                } else {
                    out = span >= 0 ? span / s[axis] + 1 : 0
                }
            }
            guard out > 0 else {
                throw ModelError("window of size \(kernel[axis]) (dilation \(d[axis])) does not fit input size \(input[axis]) on spatial axis \(axis)")
            }
            output.append(out)
        }
    }

    /// Axes padded at the front to three (D, H, W), so 1-D, 2-D and 3-D share the loops.
    var as3D: (input: [Int], kernel: [Int], strides: [Int], dilations: [Int], pads: [Int], output: [Int]) {
        let fill = 3 - spatial
        func pad(_ v: [Int], _ value: Int) -> [Int] { [Int](repeating: value, count: fill) + v }
        return (pad(input, 1), pad(kernel, 1), pad(strides, 1), pad(dilations, 1), pad(padBegin, 0), pad(output, 1))
    }
}
