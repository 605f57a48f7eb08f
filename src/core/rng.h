/* Counter-based noise: Philox4x32-10 (Salmon et al., SC'11, Random123)
 * turned into N(0,1) floats with Box-Muller, so that the same seed gives the
 * same noise on every machine, ISA and thread count.
 *
 * Definition (stable: changing it changes every image):
 *   key     = (seed & 0xffffffff, seed >> 32)
 *   counter = (block & 0xffffffff, block >> 32, stream & 0xffffffff, stream >> 32)
 *   Philox4x32-10(counter, key) = (r0, r1, r2, r3)
 *   u_j     = (r_j + 0.5) / 2^32                           (in (0, 1), never 0)
 *   normal[4*block + 0] = sqrt(-2 ln u0) * cos(2 pi u1)
 *   normal[4*block + 1] = sqrt(-2 ln u0) * sin(2 pi u1)
 *   normal[4*block + 2] = sqrt(-2 ln u2) * cos(2 pi u3)
 *   normal[4*block + 3] = sqrt(-2 ln u2) * sin(2 pi u3)
 * computed in double with our own ln/sin/cos (only +,-,*,/,sqrt and no FMA
 * contraction, so no libm differences), then rounded to float.
 * `stream` separates independent draws of one run (VAE sample, initial noise,
 * each scheduler step). Element i of a stream depends only on (seed, stream, i):
 * any split of the work across threads gives the same numbers. */
#ifndef STDCPU_CORE_RNG_H
#define STDCPU_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

void stdcpu_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Fills out[0..n) with normal[first .. first+n) of (seed, stream). */
void stdcpu_randn(uint64_t seed, uint64_t stream, uint64_t first, float *out, size_t n);

/* The deterministic double helpers (exposed for tests). */
double stdcpu_det_log(double x);          /* x > 0 */
void stdcpu_det_sincos_turns(double t, double *s, double *c); /* sin/cos(2 pi t), t in [0, 1) */

#endif
