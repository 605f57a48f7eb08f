/* Single-file checkpoints (SD1.x LDM / SDXL SGM layouts) -> canonical names,
 * with the configs taken from a diffusers-layout folder (--config). */
/* POSIX (mmap, strdup, mkstemp, fnmatch, clock_gettime) also under strict -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "base/error.h"
#include "convert.h"

static int has_tensor(void *user, const char *name) { return stdcpu_st_find(user, name) != NULL; }

static stdcpu_status store_config(stdcpu_stdm_writer *w, const char *path, const char *blob, stdcpu_json_doc **doc,
                                  stdcpu_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: cannot open", path);
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    int big = !feof(f);
    fclose(f);
    if (big)
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "%s: config larger than 64 KiB", path);
    if (doc && stdcpu_json_parse(doc, buf, n, err) != STDCPU_OK)
        return stdcpu_fail_prefix(err, "%s: ", path);
    return stdcpu_stdm_write_blob(w, blob, buf, n, err);
}

stdcpu_status convert_single_file(convert_job *job, const char *ckpt_path, const char *config_dir,
                                  stdcpu_stdm_writer *w, stdcpu_error *err)
{
    STDCPU_TRY(stdcpu_st_open(&job->ckpt, ckpt_path, err));
    stdcpu_ckpt_layout layout = stdcpu_ckpt_detect(has_tensor, job->ckpt);
    if (layout == STDCPU_CKPT_UNKNOWN)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED,
                           "%s: not an SD1.x (LDM) or SDXL (SGM) single-file checkpoint", ckpt_path);
    static const char *const comps[] = {"unet", "vae", "text_encoder", "text_encoder_2"};
    size_t used = 0;
    for (size_t c = 0; c < sizeof comps / sizeof *comps; c++) {
        char path[4096], blob[64];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s/config.json", config_dir, comps[c]);
        if (stat(path, &sb) != 0)
            continue;
        if (!strcmp(comps[c], "text_encoder_2") && layout != STDCPU_CKPT_SDXL)
            return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: an SD1.x checkpoint has no text_encoder_2 (config %s)",
                               ckpt_path, path);
        convert_component *cc = convert_add_component(job, comps[c], err);
        if (!cc)
            return err ? err->status : STDCPU_ERR_INVALID_ARG;
        snprintf(blob, sizeof blob, "%s/config.json", comps[c]);
        STDCPU_TRY(store_config(w, path, blob, &cc->config, err));
        stdcpu_param_list params = {0};
        stdcpu_ckpt_map_list map = {0};
        stdcpu_status st = stdcpu_enum_params(stdcpu_json_root(cc->config), &params, err);
        if (st == STDCPU_OK)
            st = stdcpu_ckpt_map_component(layout, comps[c], stdcpu_json_root(cc->config), &params, has_tensor,
                                           job->ckpt, &map, err);
        for (size_t i = 0; i < map.n && st == STDCPU_OK; i++) {
            const stdcpu_ckpt_map *m = &map.items[i];
            const stdcpu_st_tensor *t = stdcpu_st_find(job->ckpt, m->src);
            const stdcpu_param *p = m->param;
            int64_t numel = 1;
            for (int d = 0; d < p->ndim; d++)
                numel *= p->shape[d];
            if (!t) {
                st = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: missing %s (for %s)", ckpt_path, m->src, m->canonical);
                break;
            }
            int64_t have = t->numel;
            if (m->row_begin >= 0)
                have = t->ndim && t->shape[0] ? t->numel / t->shape[0] * (m->row_end - m->row_begin) : -1;
            if (have != numel || (m->row_begin >= 0 && (t->ndim < 1 || m->row_end > t->shape[0])) ||
                (m->transpose && (t->ndim != 2 || p->ndim != 2 || t->shape[0] != p->shape[1]))) {
                st = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: %s does not have the shape %s needs", ckpt_path,
                                 m->src, m->canonical);
                break;
            }
            st = convert_add_item(job, comps[c], p->name, t, m->row_begin, m->row_end, p->ndim, p->shape, err);
            if (st == STDCPU_OK)
                job->items[job->n_items - 1].transpose = m->transpose;
            used++;
        }
        stdcpu_ckpt_map_list_free(&map);
        stdcpu_param_list_free(&params);
        STDCPU_TRY(st);
    }
    if (!used)
        return stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "%s: no unet/ vae/ text_encoder/ config.json", config_dir);
    char path[4096];
    struct stat sb;
    snprintf(path, sizeof path, "%s/scheduler/scheduler_config.json", config_dir);
    if (stat(path, &sb) == 0)
        STDCPU_TRY(store_config(w, path, "scheduler/scheduler_config.json", NULL, err));
    if (!job->quiet)
        fprintf(stderr, "%s: %s layout, %zu of %zu tensors used (the rest: EMA copies, buffers, ...)\n", ckpt_path,
                layout == STDCPU_CKPT_SDXL ? "SDXL (SGM)" : "SD1.x (LDM)", used, stdcpu_st_count(job->ckpt));
    return STDCPU_OK;
}
