import CBLAS
import LopperModel

/// Matrix products on OpenBLAS: Gemm and batched, broadcasting MatMul.
enum MatMulKernels {
    static let all: [KernelVersion] = [
        KernelVersion("Gemm") { setup in
            let node = setup.node
            return Gemm(alpha: try node.float("alpha", default: 1), beta: try node.float("beta", default: 1),
                        transA: try node.int("transA", default: 0) != 0, transB: try node.int("transB", default: 0) != 0,
                        activation: nil)
        },
        KernelVersion("MatMul") { _ in MatMul(activation: nil) },
    ]

    /// `C = alpha * A * B` for row-major float matrices (`beta` = 0 overwrites, 1 accumulates).
    static func sgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                      a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                      beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {
            if beta == 0 { for r in 0..<m { (c + r * ldc).update(repeating: 0, count: n) } }
            return
        }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// `sgemm` with the rows or columns of C split across the context's threads (OpenBLAS
    /// itself runs single-threaded; the runtime owns the threads).
    static func parallelSgemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
                              a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
                              beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int, _ context: ExecutionContext) {
        if context.threads == 1 || m * n * k < ExecutionContext.minimumParallelCost {
            sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, beta: beta, c: c, ldc: ldc)
        } else if n >= m {
            context.parallel(n, grain: 16) { cols in
                let j = cols.lowerBound
                sgemm(transA: transA, transB: transB, m: m, n: cols.count, k: k, alpha: alpha, a: a, lda: lda,
                      b: transB ? b + j * ldb : b + j, ldb: ldb, beta: beta, c: c + j, ldc: ldc)
            }
        } else {
            context.parallel(m, grain: 4) { rows in
                let i = rows.lowerBound
                sgemm(transA: transA, transB: transB, m: rows.count, n: n, k: k, alpha: alpha,
                      a: transA ? a + i : a + i * lda, lda: lda, b: b, ldb: ldb, beta: beta, c: c + i * ldc, ldc: ldc)
            }
        }
    }

    struct Gemm: ActivationFusing {
        let alpha: Float, beta: Float
        let transA: Bool, transB: Bool
        let activation: Activation?

        func fusing(_ activation: Activation) -> Kernel {
            Gemm(alpha: alpha, beta: beta, transA: transA, transB: transB, activation: activation)
        }

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let a = try inputs.required(0), b = try inputs.required(1)
            try a.requireFloat("A")
            try b.requireFloat("B")
            guard a.rank == 2, b.rank == 2 else { throw ModelError("A and B must be matrices, found \(a.shape) and \(b.shape)") }
            let (m, k) = transA ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
            let (kb, n) = transB ? (b.shape[1], b.shape[0]) : (b.shape[0], b.shape[1])
            guard k == kb else { throw ModelError("A \(a.shape) and B \(b.shape) do not multiply (transA \(transA), transB \(transB))") }
            let out = try Tensor(uninitialized: .float32, shape: [m, n])
            var accumulate: Float = 0
            if let c = inputs.optional(2), beta != 0 {
                try c.requireFloat("C")
                let plan = try Broadcast([c.shape, [m, n]])
                guard plan.shape == [m, n] else { throw ModelError("C of shape \(c.shape) does not broadcast to [\(m), \(n)]") }
                let zero = Tensor(floats: [0], shape: [])
                broadcastBinary(c.f, zero.f, out.f, plan, context, Functions.Scale(factor: beta))
                accumulate = 1
            }
            MatMulKernels.parallelSgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                        a: a.f, lda: a.shape[1], b: b.f, ldb: b.shape[1], beta: accumulate, c: out.f, ldc: n, context)
            activation?.apply(out.f, out.count)
            return [out]
        }
    }

    struct MatMul: ActivationFusing {
        let activation: Activation?

        func fusing(_ activation: Activation) -> Kernel { MatMul(activation: activation) }

        func run(_ inputs: [Tensor?], _ context: ExecutionContext) throws -> [Tensor] {
            let a = try inputs.required(0), b = try inputs.required(1)
            try a.requireFloat("A")
            try b.requireFloat("B")
            guard a.rank >= 1, b.rank >= 1 else { throw ModelError("operands must have rank 1 or more") }
            // 1-D operands become matrices and the added axis is dropped from the result.
            let aShape = a.rank == 1 ? [1, a.shape[0]] : a.shape
            let bShape = b.rank == 1 ? [b.shape[0], 1] : b.shape
            let m = aShape[aShape.count - 2], k = aShape.last!
            let kb = bShape[bShape.count - 2], n = bShape.last!
            guard k == kb else { throw ModelError("shapes \(a.shape) and \(b.shape) do not multiply") }
            let batchA = Array(aShape.dropLast(2)), batchB = Array(bShape.dropLast(2))
            let plan = try Broadcast([batchA, batchB])
            var outShape = plan.shape + [m, n]
            if a.rank == 1 { outShape.remove(at: outShape.count - 2) }
            if b.rank == 1 { outShape.removeLast() }
            let out = try Tensor(uninitialized: .float32, shape: outShape)
            if batchB.reduce(1, *) == 1 && plan.shape == batchA {
                // Shared right operand: one product with the batch folded into the rows.
                MatMulKernels.parallelSgemm(transA: false, transB: false, m: batchA.reduce(1, *) * m, n: n, k: k,
                                            a: a.f, lda: k, b: b.f, ldb: n, beta: 0, c: out.f, ldc: n, context)
            } else {
                let batch = Tensor.count(plan.shape)
                // Batch index → operand offsets, through the broadcast of the batch shapes.
                var offsets: [(Int, Int)] = []
                offsets.reserveCapacity(batch)
                plan.forEachRow { _, o, len, s in
                    for j in 0..<len { offsets.append((o[0] + j * s[0], o[1] + j * s[1])) }
                }
                let (pa, pb, pc) = (a.f, b.f, out.f)
                context.parallel(batch, cost: batch * m * n * k) { range in
                    for index in range {
                        let (ia, ib) = offsets[index]
                        MatMulKernels.sgemm(transA: false, transB: false, m: m, n: n, k: k,
                                            a: pa + ia * m * k, lda: k, b: pb + ib * k * n, ldb: n,
                                            beta: 0, c: pc + index * m * n, ldc: n)
                    }
                }
            }
            activation?.apply(out.f, out.count)
            return [out]
        }
    }
}
