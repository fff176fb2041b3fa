#include "CKernels.h"

#include <stdio.h>
#include <stdlib.h>

// Out of memory for a tail tile: stop with a message, as Swift's own allocations trap.
static void *taps_allocate(size_t count, size_t size) {
    void *memory = calloc(count, size);
    if (memory == NULL) {
        fprintf(stderr, "lopper: out of memory for a convolution tile (%zu bytes)\n", count * size);
        abort();
    }
    return memory;
}

// Products and sums are rounded one by one unless written as an FMA.
#pragma STDC FP_CONTRACT OFF

#define TAPS_NAME taps_portable
#define TAPS_LANES 4
#define TAPS_ROWS 4
#define TAPS_VECTORS 3
#define TAPS_FMA 0
#include "conv_taps.inc"

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define TAPS_NAME taps_avx2
#define TAPS_LANES 8
#define TAPS_ROWS 4
#define TAPS_VECTORS 3
#define TAPS_FMA 1
#include "conv_taps.inc"
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#define TAPS_NAME taps_avx512
#define TAPS_LANES 16
#define TAPS_ROWS 8
#define TAPS_VECTORS 2
#define TAPS_FMA 1
#include "conv_taps.inc"
#pragma clang attribute pop
#endif

typedef void (*taps_kernel)(const float *, const ptrdiff_t *, long, const float *, long, long, float *, long);

static struct { taps_kernel run; long rows; const char *isa; } chosen = {taps_portable, 4, "portable"};

// Runs when the library loads, before any thread can call the kernel.
__attribute__((constructor)) static void choose_kernel(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        chosen.run = taps_avx512, chosen.rows = 8, chosen.isa = "avx512f";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        chosen.run = taps_avx2, chosen.rows = 4, chosen.isa = "avx2+fma";
    }
#endif
}

long lopper_conv_block_rows(void) { return chosen.rows; }

const char *lopper_conv_isa(void) { return chosen.isa; }

void lopper_conv_taps(const float *input, const ptrdiff_t *offsets, long taps,
                      const float *packed, long filters, long count,
                      float *out, long out_stride) {
    chosen.run(input, offsets, taps, packed, filters, count, out, out_stride);
}
