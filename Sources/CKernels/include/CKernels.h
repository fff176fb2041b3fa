// Convolution tiles and pointwise functions in C: vector widths and FMA are chosen per CPU at
// load time, which Swift (compiled for the baseline x86-64) cannot do.
#ifndef LOPPER_CKERNELS_H
#define LOPPER_CKERNELS_H

#include <stddef.h>

/// A function applied to each float on its own. exp and sigmoid are the methods and error bounds
/// `VectorMath` documents; AVX2 and AVX-512 give the same bits (the same fused multiply-adds),
/// the portable kernel (no FMA) its own.
typedef enum lopper_pointwise {
    LOPPER_POINTWISE_IDENTITY,
    LOPPER_POINTWISE_EXP,
    /// max(x, 0), −0 giving +0.
    LOPPER_POINTWISE_RELU,
    LOPPER_POINTWISE_SIGMOID,
    /// x · sigmoid(x), one rounding for the product.
    LOPPER_POINTWISE_SILU,
    /// x · clamp(x / 6 + 1/2, 0, 1).
    LOPPER_POINTWISE_HARD_SWISH,
} lopper_pointwise;

/// `destination[k] = function(source[k])` for `0 <= k < count`; `destination` may be `source`.
void lopper_pointwise_map(lopper_pointwise function, const float *source, float *destination, long count);

/// `lopper_pointwise_map` on the instruction set `isa` (as `lopper_conv_isa` names them) rather
/// than the one chosen at load; 0 (nothing written) when this CPU does not have it.
int lopper_pointwise_map_on(const char *isa, lopper_pointwise function, const float *source, float *destination,
                            long count);

/// Where and how `lopper_conv_taps` stores its sums.
typedef struct lopper_conv_output {
    /// Position `q` is column `q % row_width` of row `q / row_width`; it is stored at
    /// `out[m * out_stride + (q / row_width) * out_width + q % row_width]` for filter `m` when its
    /// column is below `out_width`, and dropped otherwise.
    float *out;
    long out_stride;
    long row_width;
    long out_width;
    /// Added to filter `m`'s sums when not NULL (and `bias[m]` is not 0), before `function`.
    const float *bias;
    lopper_pointwise function;
} lopper_conv_output;

/// Filters per block of packed weights in the kernel this CPU runs (weights are packed per
/// block, tap-major: `packed[(block * taps + t) * rows + r]`, filters past the last zero).
long lopper_conv_block_rows(void);

/// The instruction set the kernels use: "avx512f", "avx2+fma" or "portable".
const char *lopper_conv_isa(void);

/// Writes one channel's `height` × `width` plane, zero-padded by `top` rows and `left` columns
/// (and as many as needed after it), as its `stride_y` × `stride_x` phases one after the other,
/// each `phase_height` × `phase_width`: element (r, j) of phase (a, b) is padded element
/// (r·stride_y + a, j·stride_x + b), zero outside the plane.
void lopper_conv_split(const float *plane, long height, long width, long stride_y, long stride_x, long top, long left,
                       long phase_height, long phase_width, float *phases);

/// `function(sum over t of packed(m, t) * input[offsets[t] + q] + bias[m])` for
/// `0 <= m < filters` and `0 <= q < count`, stored as `output` says. The taps are summed in order
/// `t = 0, 1, …` with one rounding per step (a fused multiply-add where the CPU has one), so every
/// element's value is the same whichever tiles or threads computed it. `packed` starts at a
/// block boundary.
void lopper_conv_taps(const float *input, const ptrdiff_t *offsets, long taps,
                      const float *packed, long filters, long count, const lopper_conv_output *output);

#endif
