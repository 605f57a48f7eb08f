/* f32 GEMM: our own micro-kernels and a portable BLIS-style driver, so f32
 * speed does not depend on how OpenBLAS detects the CPU.
 *
 * Operation (row-major, weights stored [out][in] like a linear layer):
 *   C[rows, cols] (ldc) = (accumulate ? C : 0) + A[rows, k] (lda) . B[cols, k]^T (ldb)
 *
 * Driver (stdcpu_f32_gemm): for each block of at most mc rows (a multiple of
 * the kernel's MR), for each k block of the table's f32_kc values, it packs
 * the A block into MR-row panels [kc][MR] (rows past the end zero) and, per
 * NR columns, one B panel [kc][NR] (columns past the end zero), then runs the
 * micro-kernel over the A panels. Nothing is repacked at load time; scratch
 * is the caller's (stdcpu_f32_gemm_scratch_bytes) or allocated per call.
 *
 * Micro-kernel (stdcpu_f32_gemm_fn): always a full MR x NR tile:
 *   s[i][j] = 0, then for p = 0 .. kc-1 in order: s[i][j] = s[i][j] + a[p][i] * b[p][j]
 *   c[i][j] = accumulate ? c[i][j] + s[i][j] : s[i][j]
 * on the packed panels a [kc][MR], b [kc][NR] (b 64-byte aligned); c rows
 * ldc floats apart. The driver routes edge tiles through an MR x NR
 * temporary (copied in and out exactly).
 *
 * Determinism: an element of C is the sum, k block by k block in increasing
 * order (blocks of the table's f32_kc, fixed per ISA), of one sequential
 * chain per block started from 0; the first block's sum is stored as is
 * (or added to C when accumulating), later ones are added to C. Each chain
 * step is one fused multiply-add (fmaf semantics) in every SIMD kernel, a
 * multiply then an add (two roundings; -ffp-contract=off) in the scalar
 * reference, whose results are thus the same on every architecture. An
 * element's value therefore depends only on its row of A, its row of B, k
 * and the ISA: never on the tiling, on how callers split rows and columns
 * into calls (k too, at multiples of f32_kc), or on the thread count.
 * Summing per block bounds the rounding error to about (f32_kc + k/f32_kc)
 * steps instead of k.
 */
#ifndef STDCPU_SIMD_SGEMM_H
#define STDCPU_SIMD_SGEMM_H

#include <stddef.h>

#define STDCPU_F32_MR_MAX 16 /* no f32 micro-kernel has more rows than this */
#define STDCPU_F32_NR_MAX 64 /* nor more columns than this */

/* A full MR x NR tile; see above. */
typedef void (*stdcpu_f32_gemm_fn)(size_t kc, const float *a, const float *b, float *c,
                                   size_t ldc, int accumulate);

struct stdcpu_gemm_kernels;

/* Scratch bytes stdcpu_f32_gemm needs with this table (any shape). */
size_t stdcpu_f32_gemm_scratch_bytes(const struct stdcpu_gemm_kernels *gk);

/* C (+)= A . B^T as above, any rows, cols >= 0 and k >= 0 (k == 0 with
 * accumulate 0 zeroes C). scratch: stdcpu_f32_gemm_scratch_bytes(gk) bytes,
 * any alignment, or NULL to allocate per call. Returns 0 only when that
 * allocation fails (C untouched), else 1. A, B and C must not overlap. */
int stdcpu_f32_gemm(const struct stdcpu_gemm_kernels *gk, size_t rows, size_t cols, size_t k,
                    const float *a, size_t lda, const float *b, size_t ldb, float *c, size_t ldc,
                    int accumulate, void *scratch);

/* The micro-kernels (set by the stdcpu_gemm_init_* of their ISA). */
void stdcpu_f32_gemm_4x8_scalar(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                                int accumulate);
void stdcpu_f32_gemm_6x16_avx2(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                               int accumulate);
void stdcpu_f32_gemm_14x32_avx512(size_t kc, const float *a, const float *b, float *c,
                                  size_t ldc, int accumulate);
void stdcpu_f32_gemm_8x12_neon(size_t kc, const float *a, const float *b, float *c, size_t ldc,
                               int accumulate);

#endif
