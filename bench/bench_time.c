#include <stdio.h>
#include <time.h>

#include "bench.h"

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

bench_steal bench_steal_now(void)
{
    bench_steal r = {0, 0, 0};
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = {0};
    if (f && fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
                    &v[6], &v[7]) == 8) {
        for (int i = 0; i < 8; i++)
            r.total += v[i];
        r.steal = v[7];
        r.ok = 1;
    }
    if (f)
        fclose(f);
    return r;
}

double bench_steal_frac(bench_steal since)
{
    const bench_steal now = bench_steal_now();
    if (!since.ok || !now.ok || now.total <= since.total)
        return -1;
    return (double)(now.steal - since.steal) / (double)(now.total - since.total);
}
