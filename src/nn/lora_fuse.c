#include "nn/lora_fuse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/lora.h"

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

stdcpu_status stdcpu_nn_fuse_lora(stdcpu_wsrc *w, const char *lora_path, float scale, size_t *fused,
                                  stdcpu_error *err)
{
    const char *comp = stdcpu_wsrc_component(w);
    const size_t n = stdcpu_wsrc_count(w), plen = strlen(comp) + 1;
    char **names = calloc(n ? n : 1, sizeof *names);
    stdcpu_lora *l = NULL;
    stdcpu_status s = STDCPU_OK;
    size_t count = 0;
    if (!names)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n && s == STDCPU_OK; i++) {
        const char *name = stdcpu_wsrc_name_at(w, i);
        names[i] = malloc(plen + strlen(name) + 1);
        if (!names[i])
            s = stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        else
            sprintf(names[i], "%s.%s", comp, name);
    }
    if (s == STDCPU_OK) {
        qsort(names, n, sizeof *names, cmp_str);
        if (!(s = stdcpu_lora_create(&l, err)))
            s = stdcpu_lora_add_file(l, lora_path, scale, (const char *const *)names, n, err);
    }
    /* Every weight of rank >= 2 may be a target: fuse in f32, keep if changed. */
    for (size_t i = 0; i < n && s == STDCPU_OK; i++) {
        const char *name = names[i] + plen;
        stdcpu_wview v;
        if ((s = stdcpu_wsrc_get(w, name, &v, err)))
            break;
        if (v.ndim < 2)
            continue;
        float *f;
        if ((s = stdcpu_wsrc_read_f32(w, name, &f, NULL, err)))
            break;
        int applied = 0;
        if ((s = stdcpu_lora_apply(l, names[i], f, v.ndim, v.shape, &applied, err))) {
            stdcpu_aligned_free(f);
            break;
        }
        if (applied) {
            if ((s = stdcpu_wsrc_set_f32(w, name, f, v.ndim, v.shape, err))) {
                stdcpu_aligned_free(f);
                break;
            }
            count++;
        } else {
            stdcpu_aligned_free(f);
        }
    }
    if (s == STDCPU_OK && count == 0)
        s = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: no module of the LoRA targets the %s", lora_path, comp);
    if (fused)
        *fused = count;
    stdcpu_lora_free(l);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return s;
}
