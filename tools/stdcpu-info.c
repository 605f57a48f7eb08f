/* stdcpu-info: what a .stdm file holds (components, configs, tensors,
 * parameters, bytes by dtype); --verify checks every checksum. */
/* POSIX (mmap, strdup, mkstemp, fnmatch, clock_gettime) also under strict -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "core/stdm.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: stdcpu-info [--verify] [--tensors] [--config COMPONENT] model.stdm\n"
               "  --verify            read every tensor and blob and check its CRC-32\n"
               "  --tensors           list every tensor (name, dtype, shape)\n"
               "  --config COMPONENT  print the component's stored config JSON\n"
               "  --touch TENSOR      measure open time and resident memory before/after open and\n"
               "                      after reading every byte of one tensor\n");
}

/* Resident set size in MB from /proc/self/statm (Linux), -1 elsewhere. */
static double rss_mb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size, res;
    if (!f)
        return -1;
    int ok = fscanf(f, "%ld %ld", &size, &res) == 2;
    fclose(f);
    return ok ? (double)res * (double)sysconf(_SC_PAGESIZE) / 1e6 : -1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void print_shape(const stdcpu_stdm_tensor *t)
{
    printf("[");
    for (int d = 0; d < t->ndim; d++)
        printf(d ? ",%lld" : "%lld", (long long)t->shape[d]);
    printf("]");
}

int main(int argc, char **argv)
{
    int verify = 0, list = 0;
    const char *path = NULL, *config = NULL, *touch = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--verify"))
            verify = 1;
        else if (!strcmp(argv[i], "--tensors"))
            list = 1;
        else if (!strcmp(argv[i], "--touch") && i + 1 < argc)
            touch = argv[++i];
        else if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] != '-' && !path)
            path = argv[i];
        else {
            usage(stderr);
            return 2;
        }
    }
    if (!path) {
        usage(stderr);
        return 2;
    }
    stdcpu_stdm *m;
    stdcpu_error err;
    double rss0 = rss_mb(), t0 = now_s();
    if (stdcpu_stdm_open(&m, path, &err) != STDCPU_OK) {
        fprintf(stderr, "stdcpu-info: %s\n", err.msg);
        return 1;
    }
    if (touch) {
        double t1 = now_s(), rss1 = rss_mb();
        const stdcpu_stdm_tensor *t = stdcpu_stdm_find(m, touch);
        if (!t) {
            fprintf(stderr, "stdcpu-info: no tensor '%s'\n", touch);
            stdcpu_stdm_close(m);
            return 1;
        }
        unsigned sum = 0;
        for (size_t i = 0; i < t->nbytes; i++)
            sum += ((const unsigned char *)t->data)[i];
        double t2 = now_s(), rss2 = rss_mb();
        printf("open: %.1f ms; RSS %.1f MB before, %.1f MB after open, %.1f MB after touching %s (%zu bytes, "
               "checksum %u)\n",
               1e3 * (t1 - t0), rss0, rss1, rss2, touch, t->nbytes, sum);
        printf("touch: %.1f ms\n", 1e3 * (t2 - t1));
        stdcpu_stdm_close(m);
        return 0;
    }
    if (config) {
        char name[256];
        snprintf(name, sizeof name, "%s/config.json", config);
        const stdcpu_stdm_blob *b = stdcpu_stdm_find_blob(m, name);
        if (!b) {
            snprintf(name, sizeof name, "%s/scheduler_config.json", config);
            b = stdcpu_stdm_find_blob(m, name);
        }
        if (!b) {
            fprintf(stderr, "stdcpu-info: no config for component '%s'\n", config);
            stdcpu_stdm_close(m);
            return 1;
        }
        fwrite(b->data, 1, b->size, stdout);
        stdcpu_stdm_close(m);
        return 0;
    }
    const stdcpu_json *idx = stdcpu_stdm_index(m);
    const stdcpu_json *quant = stdcpu_json_get(idx, "quant");
    printf("file:       %s\n", path);
    printf("format:     %s version %lld, written by %s\n", stdcpu_json_get_str(idx, "format", "?"),
           (long long)stdcpu_json_get_int(idx, "version", 0), stdcpu_json_get_str(idx, "writer", "?"));
    if (quant) {
        printf("quant:      %s (int8 for >= %lld elements), keep f16:", stdcpu_json_get_str(quant, "mode", "?"),
               (long long)stdcpu_json_get_int(quant, "min_int8_elements", 0));
        const stdcpu_json *k = stdcpu_json_get(quant, "keep_f16");
        for (size_t i = 0; i < stdcpu_json_count(k); i++)
            printf(" %s", stdcpu_json_str(stdcpu_json_at(k, i)));
        printf("\n");
    }
    int64_t total_params = 0, total_bytes = 0, by_dtype[STDCPU_DT_COUNT] = {0}, n_dtype[STDCPU_DT_COUNT] = {0};
    printf("\n%-16s %8s %14s %12s  %s\n", "component", "tensors", "parameters", "bytes", "class / files");
    for (size_t c = 0; c < stdcpu_stdm_component_count(m); c++) {
        const char *comp = stdcpu_stdm_component(m, c);
        size_t cl = strlen(comp);
        int64_t nt = 0, np = 0, nb = 0;
        for (size_t i = 0; i < stdcpu_stdm_tensor_count(m); i++) {
            const stdcpu_stdm_tensor *t = stdcpu_stdm_tensor_at(m, i);
            if (strncmp(t->name, comp, cl) || t->name[cl] != '.')
                continue;
            nt++;
            np += t->numel;
            int64_t bytes = (int64_t)t->nbytes + (t->scales ? t->shape[0] * 4 : 0);
            nb += bytes;
            by_dtype[t->dtype] += bytes;
            n_dtype[t->dtype]++;
        }
        const char *cls = stdcpu_json_get_str(stdcpu_stdm_config(m, comp), "_class_name", NULL);
        if (!cls)
            cls = stdcpu_json_str(stdcpu_json_at(stdcpu_json_get(stdcpu_stdm_config(m, comp), "architectures"), 0));
        printf("%-16s %8lld %13.2fM %12lld  ", comp, (long long)nt, (double)np / 1e6, (long long)nb);
        if (cls)
            printf("%s", cls);
        for (size_t i = 0; i < stdcpu_stdm_blob_count(m); i++) {
            const stdcpu_stdm_blob *b = stdcpu_stdm_blob_at(m, i);
            if (!strncmp(b->name, comp, cl) && b->name[cl] == '/')
                printf("%s%s (%zu B)", cls || i ? " " : "", b->name + cl + 1, b->size);
        }
        printf("\n");
        total_params += np;
        total_bytes += nb;
    }
    printf("%-16s %8zu %13.2fM %12lld\n", "total", stdcpu_stdm_tensor_count(m), (double)total_params / 1e6,
           (long long)total_bytes);
    printf("\nbytes by dtype:");
    for (int d = 0; d < STDCPU_DT_COUNT; d++)
        if (n_dtype[d])
            printf("  %s %lld tensors %.1f MB", stdcpu_dtype_name((stdcpu_dtype)d), (long long)n_dtype[d],
                   (double)by_dtype[d] / 1e6);
    printf("\n");
    if (list) {
        printf("\n");
        for (size_t i = 0; i < stdcpu_stdm_tensor_count(m); i++) {
            const stdcpu_stdm_tensor *t = stdcpu_stdm_tensor_at(m, i);
            printf("%-4s ", stdcpu_dtype_name(t->dtype));
            print_shape(t);
            printf(" %s @%llu\n", t->name, (unsigned long long)t->offset);
        }
    }
    int rc = 0;
    if (verify) {
        if (stdcpu_stdm_verify(m, &err) != STDCPU_OK) {
            fprintf(stderr, "stdcpu-info: %s\n", err.msg);
            rc = 1;
        } else {
            printf("verify:     ok (header, index and %zu tensor + %zu blob checksums)\n",
                   stdcpu_stdm_tensor_count(m), stdcpu_stdm_blob_count(m));
        }
    }
    stdcpu_stdm_close(m);
    return rc;
}
