// Convolution tiles in C: vector widths and FMA are chosen per CPU at load time, which Swift
// (compiled for the baseline x86-64) cannot do.
#ifndef LOPPER_CKERNELS_H
#define LOPPER_CKERNELS_H

#include <stddef.h>

/// Filters per block of packed weights in the kernel this CPU runs (weights are packed per
/// block, tap-major: `packed[(block * taps + t) * rows + r]`, filters past the last zero).
long lopper_conv_block_rows(void);

/// The instruction set the kernel uses: "avx512f", "avx2+fma" or "portable".
const char *lopper_conv_isa(void);

/// `out[m * out_stride + q] = sum over t of packed(m, t) * input[offsets[t] + q]` for
/// `0 <= m < filters` and `0 <= q < count`, the taps summed in order `t = 0, 1, …` with one
/// rounding per step (a fused multiply-add where the CPU has one), so every element's value is
/// the same whichever tiles or threads computed it. `packed` starts at a block boundary.
void lopper_conv_taps(const float *input, const ptrdiff_t *offsets, long taps,
                      const float *packed, long filters, long count,
                      float *out, long out_stride);

#endif
