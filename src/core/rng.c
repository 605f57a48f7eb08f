#include "core/rng.h"

#include <math.h>

/* This file must not be compiled with FMA contraction: the whole point is
 * bit-identical results everywhere (configure adds -ffp-contract=off). */

void stdcpu_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        const uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        const uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        const uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        const uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

static const double LN2_HI = 6.93147180369123816490e-01; /* 0x3fe62e42fee00000 */
static const double LN2_LO = 1.90821492927058770002e-10; /* ln2 - LN2_HI */

double stdcpu_det_log(double x)
{
    int e;
    double m = frexp(x, &e); /* exact: x = m * 2^e, m in [0.5, 1) */
    if (m < 0.70710678118654752440) {
        m *= 2.0;
        e -= 1;
    }
    /* ln m = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716: the odd series
     * converges to < 1e-17 relative within these terms. */
    const double s = (m - 1.0) / (m + 1.0), s2 = s * s;
    double poly = 1.0 / 25;
    for (int k = 23; k >= 1; k -= 2)
        poly = 1.0 / k + s2 * poly;
    const double lnm = 2.0 * s * poly;
    return ((double)e * LN2_LO + lnm) + (double)e * LN2_HI;
}

/* sin and cos of r for |r| <= pi/4 by Taylor series (error < 1e-17). */
static void sincos_small(double r, double *s, double *c)
{
    const double r2 = r * r;
    double ps = 0.0, pc = 0.0;
    /* sin: r * sum (-1)^k r^2k / (2k+1)!, cos: sum (-1)^k r^2k / (2k)!, k <= 10 */
    double fs = 1.0, fc = 1.0; /* 1/(2k+1)!, 1/(2k)! */
    double cs[11], cc[11];
    for (int k = 0; k <= 10; k++) {
        if (k > 0) {
            fc = fs / (2.0 * k);
            fs = fc / (2.0 * k + 1.0);
        }
        cs[k] = (k & 1) ? -fs : fs;
        cc[k] = (k & 1) ? -fc : fc;
    }
    for (int k = 10; k >= 0; k--) {
        ps = cs[k] + r2 * ps;
        pc = cc[k] + r2 * pc;
    }
    *s = r * ps;
    *c = pc;
}

void stdcpu_det_sincos_turns(double t, double *s, double *c)
{
    /* Reduce in turns (exact for t in [0,1)): q = nearest quarter turn. */
    const double q4 = floor(t * 4.0 + 0.5);
    const double f = t - q4 * 0.25; /* in [-1/8, 1/8] turns, exact */
    const double r = f * 6.28318530717958647692;
    double ss, cc;
    sincos_small(r, &ss, &cc);
    switch ((int)q4 & 3) {
    case 0: *s = ss; *c = cc; break;
    case 1: *s = cc; *c = -ss; break;
    case 2: *s = -ss; *c = -cc; break;
    default: *s = -cc; *c = ss; break;
    }
}

void stdcpu_randn(uint64_t seed, uint64_t stream, uint64_t first, float *out, size_t n)
{
    const uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    size_t i = 0;
    while (i < n) {
        const uint64_t idx = first + i;
        const uint64_t block = idx / 4;
        const uint32_t ctr[4] = {(uint32_t)block, (uint32_t)(block >> 32), (uint32_t)stream,
                                 (uint32_t)(stream >> 32)};
        uint32_t r[4];
        stdcpu_philox4x32_10(ctr, key, r);
        double z[4];
        for (int p = 0; p < 2; p++) {
            const double u_a = ((double)r[2 * p] + 0.5) * (1.0 / 4294967296.0);
            const double u_b = ((double)r[2 * p + 1] + 0.5) * (1.0 / 4294967296.0);
            const double rad = sqrt(-2.0 * stdcpu_det_log(u_a));
            double sn, cs;
            stdcpu_det_sincos_turns(u_b, &sn, &cs);
            z[2 * p] = rad * cs;
            z[2 * p + 1] = rad * sn;
        }
        for (unsigned lane = (unsigned)(idx % 4); lane < 4 && i < n; lane++, i++)
            out[i] = (float)z[lane];
    }
}
