// Time of each Conv of a model on one thread: Lopper's tap kernel (by blocks of output rows, with
// its stride-phase copy and the copy out of the padded rows, as TapConvolution does; the copies
// here are plain loops) against im2col + OpenBLAS SGEMM (the
// path it replaced); the minimum over REPS runs, and the largest difference of the two results.
//
//   clang -O2 -I Sources/CKernels/include Docs/bench/conv_taps_vs_sgemm.c Sources/CKernels/conv_taps.c -lopenblas -o /tmp/conv_bench
//   python3 Docs/bench/conv_shapes.py MODEL | OPENBLAS_NUM_THREADS=1 OPENBLAS_CORETYPE=SkylakeX /tmp/conv_bench REPS
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "CKernels.h"

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float inside(const float *x, int H, int W, int c, int iy, int ix) {
    return iy >= 0 && iy < H && ix >= 0 && ix < W ? x[((long)c * H + iy) * W + ix] : 0;
}

int main(int argc, char **argv) {
    int reps = argc > 1 ? atoi(argv[1]) : 10, M, C, H, W, k, s, p, oh, ow;
    long rows = lopper_conv_block_rows();
    double total_taps = 0, total_blas = 0, total_sgemm = 0;
    printf("tap kernel: %s\n", lopper_conv_isa());
    while (scanf("%d %d %d %d %d %d %d %d %d", &M, &C, &H, &W, &k, &s, &p, &oh, &ow) == 9) {
        int K = C * k * k, N = oh * ow, in_place = k == 1 && s == 1 && p == 0;
        int ph = in_place ? H : oh + (k - 1) / s, pw = in_place ? W : ow + (k - 1) / s, phases = in_place ? 1 : s * s;
        float *x = malloc((size_t)C * H * W * 4), *w = malloc((size_t)M * K * 4);
        float *packed = calloc((size_t)(M + rows - 1) / rows * rows * K, 4), *phased = malloc((size_t)C * phases * ph * pw * 4);
        float *out = malloc((size_t)M * N * 4);
        float *col = malloc((size_t)K * N * 4), *reference = malloc((size_t)M * N * 4);
        ptrdiff_t *offsets = malloc((size_t)K * sizeof(ptrdiff_t));
        for (long i = 0; i < (long)C * H * W; i++) x[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        for (long i = 0; i < (long)M * K; i++) w[i] = (float)rand() / (float)RAND_MAX - 0.5f;
        for (int m = 0; m < M; m++)
            for (int t = 0; t < K; t++) packed[(m / rows) * rows * K + t * rows + m % rows] = w[(long)m * K + t];
        for (int c = 0; c < C; c++)
            for (int a = 0; a < k; a++)
                for (int b = 0; b < k; b++)
                    offsets[(c * k + a) * k + b] = (((long)c * phases + (a % s) * s + b % s) * ph + a / s) * pw + b / s;
        double best_taps = 1e9, best_blas = 1e9, best_sgemm = 1e9;
        for (int r = 0; r < reps; r++) {
            double start = seconds();
            if (!in_place) {
                float *d = phased;
                for (int c = 0; c < C; c++)
                    for (int a = 0; a < s; a++)
                        for (int b = 0; b < s; b++)
                            for (int y = 0; y < ph; y++)
                                for (int j = 0; j < pw; j++) *d++ = inside(x, H, W, c, y * s + a - p, j * s + b - p);
            }
            // Blocks of output rows, as TapConvolution.positionsPerItem gives them.
            int block = pw < 2048 ? 2048 / pw : 1;
            for (int y0 = 0; y0 < oh; y0 += block) {
                int y1 = y0 + block < oh ? y0 + block : oh;
                lopper_conv_output output = {out + (long)y0 * ow, N, pw, ow, NULL, LOPPER_POINTWISE_IDENTITY};
                lopper_conv_taps((in_place ? x : phased) + (long)y0 * pw, offsets, K, packed, M, (long)(y1 - y0 - 1) * pw + ow, &output);
            }
            double taps = seconds() - start;
            start = seconds();
            if (!in_place)
                for (int t = 0; t < K; t++) {
                    int c = t / (k * k), a = t / k % k, b = t % k;
                    for (int y = 0; y < oh; y++)
                        for (int j = 0; j < ow; j++) col[(long)t * N + y * ow + j] = inside(x, H, W, c, y * s - p + a, j * s - p + b);
                }
            double gemm_start = seconds();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1, w, K, in_place ? x : col, N, 0, reference, N);
            double end = seconds();
            if (taps < best_taps) best_taps = taps;
            if (end - start < best_blas) best_blas = end - start;
            if (end - gemm_start < best_sgemm) best_sgemm = end - gemm_start;
        }
        double difference = 0;
        for (long i = 0; i < (long)M * N; i++) {
            double d = out[i] > reference[i] ? out[i] - reference[i] : reference[i] - out[i];
            if (d > difference) difference = d;
        }
        total_taps += best_taps, total_blas += best_blas, total_sgemm += best_sgemm;
        printf("%3d <- %3d  %3dx%-3d k%d s%d: taps %7.3f ms   im2col+sgemm %7.3f ms (sgemm alone %7.3f)   max difference %.1g\n",
               M, C, H, W, k, s, best_taps * 1e3, best_blas * 1e3, best_sgemm * 1e3, difference);
        free(x), free(w), free(packed), free(phased), free(out), free(col), free(reference), free(offsets);
    }
    printf("total: taps %.2f ms, im2col+sgemm %.2f ms, sgemm alone %.2f ms\n", total_taps * 1e3, total_blas * 1e3, total_sgemm * 1e3);
    return 0;
}
