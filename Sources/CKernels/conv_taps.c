#include "CKernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
#include "pointwise.inc"
#include "conv_taps.inc"

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define TAPS_NAME taps_avx2
#define TAPS_LANES 8
#define TAPS_ROWS 4
#define TAPS_VECTORS 3
#define TAPS_FMA 1
#include "pointwise.inc"
#include "conv_taps.inc"
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#define TAPS_NAME taps_avx512
#define TAPS_LANES 16
#define TAPS_ROWS 8
#define TAPS_VECTORS 2
#define TAPS_FMA 1
#include "pointwise.inc"
#include "conv_taps.inc"
#pragma clang attribute pop
#endif

typedef void (*taps_kernel)(const float *, const ptrdiff_t *, long, const float *, long, long, const lopper_conv_output *);
typedef void (*pointwise_kernel)(lopper_pointwise, const float *, float *, long);
typedef void (*split_kernel)(const float *, long, long, long, long, long, long, long, long, float *);

static struct { taps_kernel run; pointwise_kernel map; split_kernel split; long rows; const char *isa; } chosen = {
    taps_portable, taps_portable_map, taps_portable_split, 4, "portable"};

// Runs when the library loads, before any thread can call the kernels.
__attribute__((constructor)) static void choose_kernel(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        chosen.run = taps_avx512, chosen.map = taps_avx512_map, chosen.split = taps_avx512_split, chosen.rows = 8, chosen.isa = "avx512f";
    } else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        chosen.run = taps_avx2, chosen.map = taps_avx2_map, chosen.split = taps_avx2_split, chosen.rows = 4, chosen.isa = "avx2+fma";
    }
#endif
}

long lopper_conv_block_rows(void) { return chosen.rows; }

const char *lopper_conv_isa(void) { return chosen.isa; }

void lopper_pointwise_map(lopper_pointwise function, const float *source, float *destination, long count) {
    chosen.map(function, source, destination, count);
}

int lopper_pointwise_map_on(const char *isa, lopper_pointwise function, const float *source, float *destination,
                            long count) {
    pointwise_kernel map = strcmp(isa, "portable") == 0 ? taps_portable_map : NULL;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (strcmp(isa, "avx512f") == 0 && __builtin_cpu_supports("avx512f")) map = taps_avx512_map;
    if (strcmp(isa, "avx2+fma") == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) map = taps_avx2_map;
#endif
    if (map == NULL) return 0;
    map(function, source, destination, count);
    return 1;
}

void lopper_conv_split(const float *plane, long height, long width, long stride_y, long stride_x, long top, long left,
                       long phase_height, long phase_width, float *phases) {
    chosen.split(plane, height, width, stride_y, stride_x, top, left, phase_height, phase_width, phases);
}

void lopper_conv_taps(const float *input, const ptrdiff_t *offsets, long taps,
                      const float *packed, long filters, long count, const lopper_conv_output *output) {
    chosen.run(input, offsets, taps, packed, filters, count, output);
}
