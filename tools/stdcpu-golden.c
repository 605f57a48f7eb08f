/* stdcpu-golden: runs golden reference cases (../shared/golden format) by
 * their `kind` and compares every output with its tolerance.
 *   stdcpu-golden [--precision f32|int8] [--threads N] [-v] CASE_DIR...
 *   stdcpu-golden --kinds      (lists the kinds this build runs)
 * Exit 0 when every output of every case passes, 1 when any fails, 2 on
 * usage errors. Models are loaded straight from their distribution files. */
#include "config.h"

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "golden/golden.h"

typedef struct {
    const char *kind;
    golden_kind_fn run;
} kind_entry;

/* One line per kind; a kind missing here is reported as unsupported. */
static const kind_entry kinds[] = {
    {"schedulers", golden_kind_schedulers},
    {"tokenizer", golden_kind_tokenizer},
    {"pipeline_sdxl_img2img", golden_kind_pipeline_sdxl_img2img},
    {"pipeline_sd15_img2img", golden_kind_pipeline_sd15_img2img},
    {"clip_text", golden_kind_clip_text},
    {"clip_vision", golden_kind_clip_vision},
    {"vae", golden_kind_vae},
    {"taesd_diffusers", golden_kind_taesd_diffusers},
    {"taesd_py", golden_kind_taesd_py},
    {"unet", golden_kind_unet},
    {"unet_lora", golden_kind_unet_lora},
    {"unet_ip_adapter", golden_kind_unet_ip_adapter},
};

static golden_kind_fn find_kind(const char *kind)
{
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(kinds[i].kind, kind))
            return kinds[i].run;
    return NULL;
}

static int was_checked(const golden_case *gc, const char *name)
{
    for (size_t i = 0; i < gc->n_checked; i++)
        if (gc->checked[i] && !strcmp(gc->checked[i], name))
            return 1;
    return 0;
}

static void close_case(golden_case *gc)
{
    for (size_t i = 0; i < gc->n_checked; i++)
        free(gc->checked[i]);
    free(gc->checked);
    stdcpu_st_close(gc->io);
    stdcpu_json_free(gc->doc);
}

/* Returns the number of failed outputs (>= 1 when the case could not run). */
static int run_case(const char *dir, golden_precision precision, stdcpu_pool *pool, int verbose)
{
    golden_case gc;
    memset(&gc, 0, sizeof gc);
    gc.precision = precision;
    gc.pool = pool;
    gc.verbose = verbose;
    snprintf(gc.dir, sizeof gc.dir, "%s", dir);
    size_t len = strlen(gc.dir);
    while (len > 1 && gc.dir[len - 1] == '/')
        gc.dir[--len] = '\0';
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", gc.dir);
    snprintf(gc.root, sizeof gc.root, "%s", dirname(tmp));
    gc.name = strrchr(gc.dir, '/') ? strrchr(gc.dir, '/') + 1 : gc.dir;

    stdcpu_error err;
    char path[4200];
    snprintf(path, sizeof path, "%s/case.json", gc.dir);
    if (stdcpu_json_parse_file(&gc.doc, path, &err) != STDCPU_OK) {
        printf("FAIL %s: %s\n", gc.name, err.msg);
        return 1;
    }
    const stdcpu_json *root = stdcpu_json_root(gc.doc);
    gc.kind = stdcpu_json_get_str(root, "kind", NULL);
    gc.params = stdcpu_json_get(root, "params");
    gc.models = stdcpu_json_get(root, "models");
    gc.tolerance = stdcpu_json_get(root, "tolerance");
    snprintf(path, sizeof path, "%s/io.safetensors", gc.dir);
    if (!gc.kind) {
        printf("FAIL %s: case.json has no \"kind\"\n", gc.name);
        close_case(&gc);
        return 1;
    }
    if (stdcpu_st_open(&gc.io, path, &err) != STDCPU_OK) {
        printf("FAIL %s: %s\n", gc.name, err.msg);
        close_case(&gc);
        return 1;
    }
    golden_kind_fn fn = find_kind(gc.kind);
    if (!fn) {
        printf("FAIL %s: kind \"%s\" is not supported by this build\n", gc.name, gc.kind);
        close_case(&gc);
        return 1;
    }
    stdcpu_error_clear(&err);
    if (fn(&gc, &err) != STDCPU_OK)
        golden_fail(&gc, "(case)", err.msg);
    /* Every expected output must have been produced (dbg_* are optional). */
    for (size_t i = 0; i < stdcpu_st_count(gc.io); i++) {
        const char *name = stdcpu_st_at(gc.io, i)->name;
        if (strncmp(name, "out.", 4) != 0 || !strncmp(name, "out.dbg_", 8) || was_checked(&gc, name))
            continue;
        golden_fail(&gc, name, "not produced");
    }
    printf("CASE %s kind=%s precision=%s isa=%s: %d passed, %d failed\n", gc.name, gc.kind,
           precision == GOLDEN_INT8 ? "int8" : "f32", stdcpu_isa_name(stdcpu_isa_active()), gc.n_pass, gc.n_fail);
    int fails = gc.n_fail;
    close_case(&gc);
    return fails;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: stdcpu-golden [--precision f32|int8] [--threads N] [-v] CASE_DIR...\n"
               "       stdcpu-golden --kinds\n");
}

int main(int argc, char **argv)
{
    golden_precision precision = GOLDEN_F32;
    int threads = 0, verbose = 0, first = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--precision") && i + 1 < argc) {
            const char *p = argv[++i];
            if (!strcmp(p, "f32"))
                precision = GOLDEN_F32;
            else if (!strcmp(p, "int8"))
                precision = GOLDEN_INT8;
            else {
                fprintf(stderr, "stdcpu-golden: --precision must be f32 or int8, not \"%s\"\n", p);
                return 2;
            }
        } else if (!strcmp(argv[i], "--threads") && i + 1 < argc) {
            threads = atoi(argv[++i]);
            if (threads < 1) {
                fprintf(stderr, "stdcpu-golden: --threads needs a positive number\n");
                return 2;
            }
        } else if (!strcmp(argv[i], "--kinds")) {
            for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++)
                printf("%s\n", kinds[k].kind);
            return 0;
        } else if (!strcmp(argv[i], "-v")) {
            verbose = 1;
        } else if (!strcmp(argv[i], "--help")) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "stdcpu-golden: unknown option %s\n", argv[i]);
            usage(stderr);
            return 2;
        } else {
            first = i;
            break;
        }
    }
    if (!first) {
        usage(stderr);
        return 2;
    }
    stdcpu_pool *pool;
    stdcpu_error err;
    if (stdcpu_pool_create(&pool, threads, &err) != STDCPU_OK) {
        fprintf(stderr, "stdcpu-golden: %s\n", err.msg);
        return 1;
    }
    int fails = 0, cases = 0;
    for (int i = first; i < argc; i++, cases++)
        fails += run_case(argv[i], precision, pool, verbose) != 0;
    stdcpu_pool_destroy(pool);
    printf("golden cases: %d passed, %d failed\n", cases - fails, fails);
    return fails ? 1 : 0;
}
