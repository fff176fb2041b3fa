import LopperModel

extension Plan {
    /// Has the producers of a Concat's parts write them straight into the Concat's result, so
    /// that the Concat copies nothing. Applies where the parts are contiguous pieces of the result
    /// (every axis before the Concat axis has size 1, as in batch-1 detectors) and shapes are known
    /// at load time. A Split part places the Split's input instead (Split returns views of it),
    /// which covers the Split → … → Concat of YOLO's C2f blocks. Anything the plan could not place,
    /// or that turns out differently at run time, is copied by the Concat as before.
    mutating func placeIntoConcats(_ facts: ShapeTable) {
        var names = [String](repeating: "", count: initialValues.count)
        for (name, slot) in slots { names[slot] = name }
        func shape(_ slot: Int) -> [Int]? { facts.facts[names[slot]]?.type.concreteShape }
        var producer: [Int: Int] = [:]
        for (position, step) in steps.enumerated() { for case let slot? in step.outputs { producer[slot] = position } }

        /// Places `value` at element `start` of the result of step `concat`, when its producer
        /// writes into a destination and the region is free.
        func place(_ value: Int, at start: Int, in concat: Int, total: [Int], _ taken: inout [Range<Int>]) {
            guard let position = producer[value], let valueShape = shape(value) else { return }
            let step = steps[position]
            if step.kernel is LayoutKernels.Split, let input = step.inputs.first ?? nil, let whole = shape(input),
               let attribute = try? step.node.int("axis", default: 0),
               let axis = try? normalizeAxis(attribute, rank: whole.count), whole[..<axis].allSatisfy({ $0 == 1 }) {
                // The parts before `value` in the Split's input.
                var before = 0
                for case let output? in step.outputs {
                    if output == value { break }
                    guard let partShape = shape(output) else { return }
                    before += Tensor.count(partShape)
                }
                if start - before >= 0 { place(input, at: start - before, in: concat, total: total, &taken) }
                return
            }
            let region = start..<(start + Tensor.count(valueShape))
            // A step placed already (another part of the same Split, or another Concat) stays where it is.
            guard step.placement == nil, step.kernel is DestinationWriting, step.outputs.count == 1, region.upperBound <= Tensor.count(total),
                  !taken.contains(where: { $0.overlaps(region) }) else { return }
            steps[position].placement = Placement(concat: concat, elements: start, shape: valueShape)
            steps[concat].gatheredShape = total
            taken.append(region)
        }

        for (concat, step) in steps.enumerated() where step.kernel is LayoutKernels.Concat {
            guard step.outputs.count == 1, let result = step.outputs[0], let total = shape(result),
                  facts.facts[names[result]]?.type.elementType == .float32,
                  let attribute = try? step.node.int("axis", default: 0),
                  let axis = try? normalizeAxis(attribute, rank: total.count),
                  total[..<axis].allSatisfy({ $0 == 1 }) else { continue }
            let inner = total[(axis + 1)...].reduce(1, *)
            var taken: [Range<Int>] = []
            var start = 0
            for input in step.inputs {
                guard let input, let part = shape(input), part.count == total.count else { break }
                place(input, at: start, in: concat, total: total, &taken)
                start += part[axis] * inner
            }
        }
    }
}
