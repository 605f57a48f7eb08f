/* stdcpu-convert: diffusers folders / single-file checkpoints (+ LoRAs,
 * IP-Adapter, motion adapter, TAESD, tokenizer) -> one .stdm file.
 * One tensor is in memory at a time; the output appears atomically. */
/* POSIX (mmap, strdup, mkstemp, fnmatch, clock_gettime) also under strict -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include "config.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mem.h"
#include "cli_progress.h"
#include "convert.h"
#include "core/lora.h"
#include "core/quant.h"

#define MAX_LORAS 16
#define MAX_KEEP 64

typedef struct {
    const char *base, *random_dir, *config_dir, *ip_adapter, *image_encoder, *motion, *taesd, *tokenizer, *out;
    const char *lora[MAX_LORAS];
    char lora_path[MAX_LORAS][4096]; /* FILE part of FILE:SCALE */
    float lora_scale[MAX_LORAS];
    int n_lora;
    const char *keep[MAX_KEEP];
    int n_keep;
    stdcpu_quant_mode mode;
    int quiet;
    uint64_t seed;
} convert_opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: stdcpu-convert (--base DIR_OR_FILE | --random CONFIG_DIR) [options] -o model.stdm\n"
            "  --base DIR|FILE        diffusers folder (unet/ vae/ text_encoder*/ tokenizer*/ scheduler/)\n"
            "                         or a single-file checkpoint (.safetensors; needs --config)\n"
            "  --config DIR           diffusers-layout folder of config.json files for a single-file base\n"
            "  --random CONFIG_DIR    random weights for every config.json under CONFIG_DIR\n"
            "  --lora FILE[:SCALE]    fuse a LoRA (repeatable; PEFT, kohya or old diffusers keys)\n"
            "  --ip-adapter FILE      IP-Adapter weights (needs --image-encoder DIR)\n"
            "  --image-encoder DIR    CLIP vision encoder folder (config.json + model.safetensors)\n"
            "  --motion-adapter DIR   AnimateDiff MotionAdapter folder\n"
            "  --taesd DIR            diffusers AutoencoderTiny folder\n"
            "  --tokenizer FILE|DIR   bpe_simple_vocab_16e6.txt.gz, or a folder with tokenizer/ (+ tokenizer_2/)\n"
            "                         or vocab.json + merges.txt (default: the base's tokenizer folders)\n"
            "  --quant int8|f16|f32   weight storage (default int8)\n"
            "  --keep-f16 GLOB        keep matching tensors f16 in int8 mode (repeatable; canonical names)\n"
            "  --seed N               seed for --random (default 0)\n"
            "  -q                     quiet\n"
            "  -o FILE                output .stdm\n");
}

static int is_dir(const char *p)
{
    struct stat sb;
    return p && stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}
static int is_file(const char *p)
{
    struct stat sb;
    return p && stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static stdcpu_status read_file(const char *path, char **data, size_t *len, stdcpu_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: cannot open", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    if (n < 0 || n > (1L << 30)) {
        fclose(f);
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "%s: unreadable or too large", path);
    }
    *data = malloc((size_t)n + 1);
    if (!*data) {
        fclose(f);
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t got = fread(*data, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        free(*data);
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: read error", path);
    }
    *len = got;
    return STDCPU_OK;
}

/* Stores a file as blob "<blob>" and, for configs, parses it into *doc. */
static stdcpu_status store_file(stdcpu_stdm_writer *w, const char *path, const char *blob, stdcpu_json_doc **doc,
                                stdcpu_error *err)
{
    char *data = NULL;
    size_t len = 0;
    STDCPU_TRY(read_file(path, &data, &len, err));
    stdcpu_status st = STDCPU_OK;
    if (doc) {
        st = stdcpu_json_parse(doc, data, len, err);
        if (st != STDCPU_OK)
            stdcpu_fail_prefix(err, "%s: ", path);
    }
    if (st == STDCPU_OK)
        st = stdcpu_stdm_write_blob(w, blob, data, len, err);
    free(data);
    return st;
}

convert_component *convert_add_component(convert_job *job, const char *name, stdcpu_error *err)
{
    for (int i = 0; i < job->n_comps; i++)
        if (!strcmp(job->comps[i].name, name)) {
            stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "component %s given twice", name);
            return NULL;
        }
    if (job->n_comps == (int)(sizeof job->comps / sizeof *job->comps)) {
        stdcpu_fail(err, STDCPU_ERR_LIMIT, "too many components");
        return NULL;
    }
    convert_component *c = &job->comps[job->n_comps++];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    return c;
}

stdcpu_status convert_add_item(convert_job *job, const char *comp, const char *name, const stdcpu_st_tensor *src,
                               int64_t row_begin, int64_t row_end, int ndim, const int64_t *shape, stdcpu_error *err)
{
    if (job->n_items == job->cap_items) {
        size_t cap = job->cap_items ? 2 * job->cap_items : 1024;
        convert_item *it = realloc(job->items, cap * sizeof *it);
        if (!it)
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        job->items = it;
        job->cap_items = cap;
    }
    convert_item *it = &job->items[job->n_items];
    size_t n = strlen(comp) + strlen(name) + 2;
    if (!(it->name = malloc(n)))
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    snprintf(it->name, n, "%s.%s", comp, name);
    it->src = src;
    it->row_begin = row_begin;
    it->row_end = row_end;
    it->transpose = 0;
    it->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        it->shape[i] = shape[i];
    job->n_items++;
    return STDCPU_OK;
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The weight files of a folder: the unsuffixed variant if present, else
 * fp16, else any; all shards of the chosen variant. */
static stdcpu_status open_shards(convert_component *c, const char *dir, stdcpu_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return stdcpu_fail(err, STDCPU_ERR_IO, "%s: cannot open folder", dir);
    char *names[CONVERT_MAX_SHARDS * 4];
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < (int)(sizeof names / sizeof *names)) {
        size_t l = strlen(e->d_name);
        if (l > 12 && !strcmp(e->d_name + l - 12, ".safetensors"))
            names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, cmp_cstr);
    /* variant of a name: the text between the model name and ".safetensors", e.g. "fp16" */
    const char *want = NULL;
    for (int pass = 0; pass < 3 && !want; pass++)
        for (int i = 0; i < n && !want; i++) {
            int fp16 = strstr(names[i], ".fp16.") != NULL, other = strchr(names[i], '.') != strrchr(names[i], '.');
            if ((pass == 0 && !other) || (pass == 1 && fp16) || pass == 2)
                want = pass == 0 ? "" : pass == 1 ? ".fp16." : names[i];
        }
    stdcpu_status st = STDCPU_OK;
    for (int i = 0; i < n; i++) {
        int other = strchr(names[i], '.') != strrchr(names[i], '.');
        int take = want && ((!*want && !other) || (!strcmp(want, ".fp16.") && strstr(names[i], ".fp16.")) ||
                            !strcmp(want, names[i]));
        if (take && st == STDCPU_OK) {
            if (c->n_shards == CONVERT_MAX_SHARDS) {
                st = stdcpu_fail(err, STDCPU_ERR_LIMIT, "%s: too many weight shards", dir);
            } else {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", dir, names[i]);
                st = stdcpu_st_open(&c->shards[c->n_shards], path, err);
                if (st == STDCPU_OK)
                    c->n_shards++;
            }
        }
        free(names[i]);
    }
    if (st == STDCPU_OK && !c->n_shards)
        st = stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "%s: no .safetensors weights", dir);
    return st;
}

/* Every tensor of the shards becomes an item; with an enumerable config the
 * names and shapes must match it exactly (extra HF buffers are dropped). */
static stdcpu_status items_from_shards(convert_job *job, convert_component *c, const char *where, stdcpu_error *err)
{
    stdcpu_param_list expect = {0};
    int check = 0;
    if (c->config) {
        stdcpu_error e2;
        check = stdcpu_enum_params(stdcpu_json_root(c->config), &expect, &e2) == STDCPU_OK;
        if (!check)
            stdcpu_param_list_free(&expect);
        stdcpu_param_list_sort(&expect);
    }
    size_t found = 0;
    stdcpu_status st = STDCPU_OK;
    for (int s = 0; s < c->n_shards && st == STDCPU_OK; s++)
        for (size_t i = 0; i < stdcpu_st_count(c->shards[s]) && st == STDCPU_OK; i++) {
            const stdcpu_st_tensor *t = stdcpu_st_at(c->shards[s], i);
            if (strstr(t->name, "position_ids"))
                continue; /* HF CLIP buffer (arange), not a parameter */
            if (check) {
                const stdcpu_param *p = stdcpu_param_list_find(&expect, t->name);
                if (!p) {
                    st = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: tensor %s is not part of the %s its config describes",
                                     where, t->name, stdcpu_config_class(stdcpu_json_root(c->config)));
                    break;
                }
                int same = p->ndim == t->ndim;
                for (int d = 0; same && d < t->ndim; d++)
                    same = p->shape[d] == t->shape[d];
                if (!same) {
                    st = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: tensor %s has a shape its config does not imply",
                                     where, t->name);
                    break;
                }
                found++;
            }
            st = convert_add_item(job, c->name, t->name, t, -1, -1, t->ndim, t->shape, err);
        }
    if (st == STDCPU_OK && check && found != expect.n)
        st = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: %zu of the %zu parameters its config implies are missing",
                         where, expect.n - found, expect.n);
    stdcpu_param_list_free(&expect);
    return st;
}

/* A diffusers / HF model folder: config.json + weights. */
static stdcpu_status add_folder(convert_job *job, stdcpu_stdm_writer *w, const char *comp, const char *dir,
                                int random, stdcpu_error *err)
{
    convert_component *c = convert_add_component(job, comp, err);
    if (!c)
        return err ? err->status : STDCPU_ERR_INVALID_ARG;
    char path[4096], blob[128];
    snprintf(path, sizeof path, "%s/config.json", dir);
    snprintf(blob, sizeof blob, "%s/config.json", comp);
    if (is_file(path))
        STDCPU_TRY(store_file(w, path, blob, &c->config, err));
    else if (random)
        return stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "%s: no config.json", dir);
    if (!random) {
        STDCPU_TRY(open_shards(c, dir, err));
        return items_from_shards(job, c, dir, err);
    }
    stdcpu_param_list l = {0};
    stdcpu_status st = stdcpu_enum_params(stdcpu_json_root(c->config), &l, err);
    if (st != STDCPU_OK)
        stdcpu_fail_prefix(err, "%s: ", path);
    for (size_t i = 0; i < l.n && st == STDCPU_OK; i++)
        st = convert_add_item(job, comp, l.items[i].name, NULL, -1, -1, l.items[i].ndim, l.items[i].shape, err);
    stdcpu_param_list_free(&l);
    return st;
}

/* A single weights file whose keys are already canonical within `comp`. */
static stdcpu_status add_file_component(convert_job *job, const char *comp, const char *file, stdcpu_error *err)
{
    convert_component *c = convert_add_component(job, comp, err);
    if (!c)
        return err ? err->status : STDCPU_ERR_INVALID_ARG;
    STDCPU_TRY(stdcpu_st_open(&c->shards[0], file, err));
    c->n_shards = 1;
    return items_from_shards(job, c, file, err);
}

/* Tokenizer files stored as-is under tokenizer/ and tokenizer_2/. */
static stdcpu_status add_tokenizer_dir(stdcpu_stdm_writer *w, const char *dir, const char *comp, stdcpu_error *err)
{
    static const char *const files[] = {"vocab.json", "merges.txt", "special_tokens_map.json",
                                        "tokenizer_config.json"};
    int any = 0;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[4096], blob[128];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        snprintf(blob, sizeof blob, "%s/%s", comp, files[i]);
        if (is_file(path)) {
            STDCPU_TRY(store_file(w, path, blob, NULL, err));
            any = 1;
        }
    }
    return any ? STDCPU_OK : stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "%s: no vocab.json / merges.txt", dir);
}

static stdcpu_status add_tokenizer(stdcpu_stdm_writer *w, const char *src, stdcpu_error *err)
{
    char path[4096];
    if (is_file(src)) {
        const char *base = strrchr(src, '/');
        char blob[256];
        snprintf(blob, sizeof blob, "tokenizer/%s", base ? base + 1 : src);
        return store_file(w, src, blob, NULL, err);
    }
    snprintf(path, sizeof path, "%s/tokenizer", src);
    if (is_dir(path)) {
        STDCPU_TRY(add_tokenizer_dir(w, path, "tokenizer", err));
        snprintf(path, sizeof path, "%s/tokenizer_2", src);
        return is_dir(path) ? add_tokenizer_dir(w, path, "tokenizer_2", err) : STDCPU_OK;
    }
    return add_tokenizer_dir(w, src, "tokenizer", err);
}

static const char *const model_dirs[] = {"unet", "vae", "text_encoder", "text_encoder_2", "image_encoder", "taesd"};

/* --base DIR or --random DIR: every known model subfolder + scheduler + tokenizers. */
static stdcpu_status add_pipeline_dir(convert_job *job, stdcpu_stdm_writer *w, const char *dir, int random,
                                      int want_tokenizer, stdcpu_error *err)
{
    char path[4096];
    int any = 0;
    for (size_t i = 0; i < sizeof model_dirs / sizeof *model_dirs; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, model_dirs[i]);
        if (is_dir(path)) {
            STDCPU_TRY(add_folder(job, w, model_dirs[i], path, random, err));
            any = 1;
        }
    }
    if (!any)
        return stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "%s: no unet/ vae/ text_encoder/ folders", dir);
    snprintf(path, sizeof path, "%s/scheduler/scheduler_config.json", dir);
    if (is_file(path)) {
        stdcpu_json_doc *doc = NULL;
        STDCPU_TRY(store_file(w, path, "scheduler/scheduler_config.json", &doc, err));
        stdcpu_json_free(doc);
    }
    snprintf(path, sizeof path, "%s/model_index.json", dir);
    if (is_file(path))
        STDCPU_TRY(store_file(w, path, "pipeline/model_index.json", NULL, err));
    snprintf(path, sizeof path, "%s/tokenizer", dir);
    if (want_tokenizer && is_dir(path))
        STDCPU_TRY(add_tokenizer(w, dir, err));
    return STDCPU_OK;
}

static int cmp_item(const void *a, const void *b)
{
    return strcmp(((const convert_item *)a)->name, ((const convert_item *)b)->name);
}

static convert_component *component_of(convert_job *job, const char *name)
{
    for (int i = 0; i < job->n_comps; i++) {
        size_t n = strlen(job->comps[i].name);
        if (!strncmp(name, job->comps[i].name, n) && name[n] == '.')
            return &job->comps[i];
    }
    return NULL;
}

/* Loads, fuses, quantises and writes one tensor. */
static stdcpu_status write_item(convert_job *job, const convert_item *it, const stdcpu_quant_policy *pol,
                                stdcpu_lora *lora, stdcpu_stdm_writer *w, stdcpu_error *err)
{
    int64_t numel = 1;
    for (int i = 0; i < it->ndim; i++)
        numel *= it->shape[i];
    size_t n = (size_t)numel;
    convert_component *c = component_of(job, it->name);
    c->tensors++;
    c->params += numel;
    if (it->src && !stdcpu_st_dtype_is_float(it->src->dtype)) {
        stdcpu_dtype dt;
        switch (it->src->dtype) {
        case STDCPU_ST_I64: dt = STDCPU_DT_I64; break;
        case STDCPU_ST_I32: dt = STDCPU_DT_I32; break;
        case STDCPU_ST_U8:
        case STDCPU_ST_BOOL: dt = STDCPU_DT_U8; break;
        default:
            return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "%s: dtype %s cannot be stored", it->name,
                               stdcpu_st_dtype_name(it->src->dtype));
        }
        c->bytes += (int64_t)it->src->nbytes;
        return stdcpu_stdm_write_tensor(w, it->name, dt, it->ndim, it->shape, it->src->data, NULL, err);
    }
    float *f = stdcpu_aligned_alloc(n * sizeof *f + 4);
    if (!f)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory (%zu floats)", it->name, n);
    stdcpu_status st = STDCPU_OK;
    if (!it->src) {
        convert_random_fill(it->name, it->ndim, it->shape, job->seed, f, n);
    } else if (it->transpose) { /* [a, b] source -> [b, a] parameter */
        float *all;
        st = stdcpu_st_to_f32(it->src, &all, err);
        if (st == STDCPU_OK) {
            int64_t a = it->src->shape[0], b = it->src->shape[1];
            for (int64_t i = 0; i < a; i++)
                for (int64_t j = 0; j < b; j++)
                    f[j * a + i] = all[i * b + j];
            stdcpu_aligned_free(all);
        }
    } else if (it->row_begin < 0) {
        st = stdcpu_st_read_f32(it->src, f, err);
    } else { /* a row slice of a fused tensor (OpenCLIP in_proj) */
        float *all;
        st = stdcpu_st_to_f32(it->src, &all, err);
        if (st == STDCPU_OK) {
            size_t row = n / (size_t)(it->row_end - it->row_begin);
            memcpy(f, all + (size_t)it->row_begin * row, n * sizeof *f);
            stdcpu_aligned_free(all);
        }
    }
    if (st == STDCPU_OK && lora)
        st = stdcpu_lora_apply(lora, it->name, f, it->ndim, it->shape, NULL, err);
    stdcpu_dtype dt = stdcpu_quant_choose(pol, it->name, it->ndim, it->shape);
    if (st == STDCPU_OK) {
        if (dt == STDCPU_DT_F32) {
            st = stdcpu_stdm_write_tensor(w, it->name, dt, it->ndim, it->shape, f, NULL, err);
            c->bytes += (int64_t)(n * 4);
        } else if (dt == STDCPU_DT_F16) {
            uint16_t *h = stdcpu_aligned_alloc(n * 2 + 2);
            if (!h) {
                st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory", it->name);
            } else {
                stdcpu_f32_to_f16_array(f, h, n);
                st = stdcpu_stdm_write_tensor(w, it->name, dt, it->ndim, it->shape, h, NULL, err);
                stdcpu_aligned_free(h);
            }
            c->bytes += (int64_t)(n * 2);
        } else {
            int64_t rows = it->shape[0], cols = rows ? numel / rows : 0;
            int8_t *q = stdcpu_aligned_alloc(n + 1);
            float *sc = stdcpu_aligned_alloc((size_t)rows * 4 + 4);
            if (!q || !sc) {
                st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: out of memory", it->name);
            } else {
                stdcpu_quant_int8_rows(f, rows, cols, q, sc);
                st = stdcpu_stdm_write_tensor(w, it->name, dt, it->ndim, it->shape, q, sc, err);
            }
            stdcpu_aligned_free(q);
            stdcpu_aligned_free(sc);
            c->bytes += (int64_t)n + rows * 4;
        }
    }
    stdcpu_aligned_free(f);
    return st;
}

/* kohya LoRAs for SDXL name UNet modules by their original (LDM/SGM) path:
 * "input_blocks_4_1_proj_in" -> unet.down_blocks.1.attentions.0.proj_in. */
static stdcpu_status set_kohya_aliases(convert_job *job, stdcpu_lora *lora, stdcpu_error *err)
{
    convert_component *unet = NULL;
    for (int i = 0; i < job->n_comps; i++)
        if (!strcmp(job->comps[i].name, "unet"))
            unet = &job->comps[i];
    if (!unet || !unet->config)
        return STDCPU_OK;
    stdcpu_param_list params = {0};
    stdcpu_ckpt_map_list map = {0};
    stdcpu_error ignored;
    const stdcpu_json *cfg = stdcpu_json_root(unet->config);
    if (stdcpu_enum_params(cfg, &params, &ignored) != STDCPU_OK ||
        stdcpu_ckpt_map_component(STDCPU_CKPT_SD1, "unet", cfg, &params, NULL, NULL, &map, &ignored) != STDCPU_OK) {
        stdcpu_ckpt_map_list_free(&map);
        stdcpu_param_list_free(&params);
        return STDCPU_OK; /* no aliases: diffusers-named kohya files still work */
    }
    char **stems = calloc(map.n + 1, sizeof *stems);
    const char **targets = calloc(map.n + 1, sizeof *targets);
    size_t n = 0;
    stdcpu_status st = stems && targets ? STDCPU_OK : stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
    for (size_t i = 0; st == STDCPU_OK && i < map.n; i++) {
        const char *src = map.items[i].src + strlen("model.diffusion_model.");
        size_t len = strlen(src);
        if (len < 8 || strcmp(src + len - 7, ".weight"))
            continue;
        if (!(stems[n] = strdup(src))) {
            st = stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
            break;
        }
        stems[n][len - 7] = '\0';
        for (char *c = stems[n]; *c; c++)
            if (*c == '.')
                *c = '_';
        targets[n++] = map.items[i].canonical;
    }
    if (st == STDCPU_OK)
        st = stdcpu_lora_set_unet_aliases(lora, (const char *const *)stems, targets, n, err);
    for (size_t i = 0; i < n; i++)
        free(stems[i]);
    free(stems);
    free(targets);
    stdcpu_ckpt_map_list_free(&map);
    stdcpu_param_list_free(&params);
    return st;
}

static stdcpu_status policy_json(const stdcpu_quant_policy *p, stdcpu_strbuf *b)
{
    int r = stdcpu_strbuf_printf(b, "{\"mode\":\"%s\",\"min_int8_elements\":%lld,\"int8\":\"symmetric per output "
                                    "channel (dim 0), scale = max|w|/127\",\"keep_f16\":[",
                                 stdcpu_quant_mode_name(p->mode), (long long)p->min_int8_elements);
    for (size_t i = 0; i < p->n_keep_f16 && !r; i++)
        r = (i && stdcpu_strbuf_printf(b, ",")) || stdcpu_strbuf_json_string(b, p->keep_f16[i]);
    if (!r)
        r = stdcpu_strbuf_printf(b, "],\"f32\":\"every tensor of rank < 2\"}");
    return r ? STDCPU_ERR_NOMEM : STDCPU_OK;
}

static stdcpu_status run(const convert_opts *o, convert_job *job, cli_progress *prog, stdcpu_error *err)
{
    stdcpu_stdm_writer *w;
    STDCPU_TRY(stdcpu_stdm_writer_open(&w, o->out, err));
    stdcpu_lora *lora = NULL;
    const char *pats[MAX_KEEP + 64];
    size_t np = 0;
    for (const char *const *d = stdcpu_quant_default_keep(); *d; d++)
        pats[np++] = *d;
    for (int i = 0; i < o->n_keep; i++)
        pats[np++] = o->keep[i];
    stdcpu_quant_policy pol = {o->mode, pats, np, STDCPU_QUANT_MIN_INT8_ELEMENTS};
    stdcpu_status st = STDCPU_OK;
    const char *src = o->random_dir ? o->random_dir : o->base;
    if (is_dir(src))
        st = add_pipeline_dir(job, w, src, o->random_dir != NULL, !o->tokenizer, err);
    else if (o->random_dir)
        st = stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "%s: not a folder", o->random_dir);
    else if (!o->config_dir)
        st = stdcpu_fail(err, STDCPU_ERR_INVALID_ARG,
                         "%s: a single-file checkpoint carries no configs: pass --config DIR (diffusers layout)",
                         o->base);
    else
        st = convert_single_file(job, o->base, o->config_dir, w, err);
    if (st == STDCPU_OK && o->tokenizer)
        st = add_tokenizer(w, o->tokenizer, err);
    /* the image encoder may come with the base folder (image_encoder/) */
    char enc_sub[4200];
    snprintf(enc_sub, sizeof enc_sub, "%s/image_encoder", src ? src : "");
    if (st == STDCPU_OK && o->ip_adapter) {
        if (!o->image_encoder && !(src && is_dir(src) && is_dir(enc_sub)))
            st = stdcpu_fail(err, STDCPU_ERR_INVALID_ARG,
                             "--ip-adapter needs --image-encoder DIR (or an image_encoder/ folder in the base)");
        else
            st = add_file_component(job, "ip_adapter", o->ip_adapter, err);
    }
    if (st == STDCPU_OK && o->image_encoder)
        st = add_folder(job, w, "image_encoder", o->image_encoder, 0, err);
    if (st == STDCPU_OK && o->motion)
        st = add_folder(job, w, "motion_adapter", o->motion, 0, err);
    if (st == STDCPU_OK && o->taesd)
        st = add_folder(job, w, "taesd", o->taesd, 0, err);
    if (st == STDCPU_OK && job->n_items)
        qsort(job->items, job->n_items, sizeof *job->items, cmp_item);
    for (size_t i = 1; st == STDCPU_OK && i < job->n_items; i++)
        if (!strcmp(job->items[i].name, job->items[i - 1].name))
            st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "tensor %s appears twice (duplicate shards?)", job->items[i].name);
    if (st == STDCPU_OK && o->n_lora) {
        const char **names = malloc(job->n_items * sizeof *names + 1);
        st = names ? stdcpu_lora_create(&lora, err) : stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory");
        for (size_t i = 0; names && i < job->n_items; i++)
            names[i] = job->items[i].name;
        if (st == STDCPU_OK)
            st = set_kohya_aliases(job, lora, err);
        for (int i = 0; st == STDCPU_OK && i < o->n_lora; i++) {
            st = stdcpu_lora_add_file(lora, o->lora[i], o->lora_scale[i], names, job->n_items, err);
            if (st == STDCPU_OK && !o->quiet)
                fprintf(stderr, "lora %s: scale %g, %zu module deltas in total\n", o->lora[i], o->lora_scale[i],
                        stdcpu_lora_count(lora));
        }
        free(names);
    }
    int last = -1;
    for (size_t i = 0; st == STDCPU_OK && i < job->n_items; i++) {
        st = write_item(job, &job->items[i], &pol, lora, w, err);
        int step = (int)((i + 1) * 100 / job->n_items);
        if (step != last && step > 0 && (prog->tty || step % 10 == 0 || i + 1 == job->n_items)) {
            cli_progress_update(prog, "convert", step, 100);
            last = step;
        }
    }
    cli_progress_finish(prog);
    if (st == STDCPU_OK && lora)
        st = stdcpu_lora_check_all_applied(lora, err);
    stdcpu_strbuf b = {0};
    if (st == STDCPU_OK && (st = policy_json(&pol, &b)) == STDCPU_OK)
        st = stdcpu_stdm_writer_set(w, "quant", b.p, err);
    stdcpu_strbuf_free(&b);
    if (st == STDCPU_OK) {
        int r = stdcpu_strbuf_printf(&b, "{");
        for (int i = 0; i < job->n_comps && !r; i++)
            r = stdcpu_strbuf_printf(&b, "%s\"%s\":{\"tensors\":%lld,\"params\":%lld,\"bytes\":%lld}", i ? "," : "",
                                     job->comps[i].name, (long long)job->comps[i].tensors,
                                     (long long)job->comps[i].params, (long long)job->comps[i].bytes);
        r = r || stdcpu_strbuf_printf(&b, "}");
        st = r ? stdcpu_fail(err, STDCPU_ERR_NOMEM, "out of memory") : stdcpu_stdm_writer_set(w, "components", b.p, err);
        stdcpu_strbuf_free(&b);
    }
    if (st == STDCPU_OK)
        st = stdcpu_stdm_writer_set(w, "writer", "\"stdcpu-convert " PACKAGE_VERSION "\"", err);
    stdcpu_lora_free(lora);
    if (st == STDCPU_OK) {
        st = stdcpu_stdm_writer_finish(w, err);
    } else {
        stdcpu_stdm_writer_abort(w);
    }
    return st;
}

static int parse_args(int argc, char **argv, convert_opts *o)
{
    memset(o, 0, sizeof *o);
    o->mode = STDCPU_QUANT_INT8;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(flag, field)                                                          \
    if (!strcmp(a, flag)) {                                                       \
        if (!v) {                                                                 \
            fprintf(stderr, "stdcpu-convert: %s needs a value\n", flag);         \
            return 2;                                                             \
        }                                                                         \
        o->field = v;                                                             \
        i++;                                                                      \
        continue;                                                                 \
    }
        OPT("--base", base)
        OPT("--random", random_dir)
        OPT("--config", config_dir)
        OPT("--ip-adapter", ip_adapter)
        OPT("--image-encoder", image_encoder)
        OPT("--motion-adapter", motion)
        OPT("--taesd", taesd)
        OPT("--tokenizer", tokenizer)
        OPT("-o", out)
#undef OPT
        if (!strcmp(a, "-q")) {
            o->quiet = 1;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 1;
        } else if (!strcmp(a, "--lora") && v && o->n_lora < MAX_LORAS) {
            o->lora[o->n_lora] = v;
            o->lora_scale[o->n_lora] = 1.0f;
            const char *colon = strrchr(v, ':');
            char *end = NULL;
            float s = colon ? strtof(colon + 1, &end) : 0;
            if (colon && !*end && end != colon + 1) { /* else the ':' belongs to the path */
                o->lora_scale[o->n_lora] = s;
                snprintf(o->lora_path[o->n_lora], sizeof o->lora_path[o->n_lora], "%.*s", (int)(colon - v), v);
                o->lora[o->n_lora] = o->lora_path[o->n_lora];
            }
            o->n_lora++;
            i++;
        } else if (!strcmp(a, "--keep-f16") && v && o->n_keep < MAX_KEEP) {
            o->keep[o->n_keep++] = v;
            i++;
        } else if (!strcmp(a, "--quant") && v) {
            if (!stdcpu_quant_mode_parse(v, &o->mode)) {
                fprintf(stderr, "stdcpu-convert: --quant takes int8, f16 or f32\n");
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--seed") && v) {
            o->seed = strtoull(v, NULL, 0);
            i++;
        } else {
            fprintf(stderr, "stdcpu-convert: unknown or incomplete option '%s' (see --help)\n", a);
            return 2;
        }
    }
    if (!o->out || (!o->base == !o->random_dir)) {
        usage(stderr);
        return 2;
    }
    return 0;
}

int main(int argc, char **argv)
{
    convert_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc == 1 ? 0 : rc;
    convert_job job = {0};
    job.quiet = o.quiet;
    job.seed = o.seed;
    cli_progress prog;
    cli_progress_init(&prog, stderr, o.quiet, -1);
    stdcpu_error err = {0};
    double t0 = cli_progress_clock();
    stdcpu_status st = run(&o, &job, &prog, &err);
    if (st != STDCPU_OK) {
        fprintf(stderr, "stdcpu-convert: %s\n", err.msg);
    } else if (!o.quiet) {
        int64_t tp = 0, tb = 0;
        for (int i = 0; i < job.n_comps; i++) {
            const convert_component *c = &job.comps[i];
            fprintf(stderr, "%-15s %6lld tensors %10.2fM params %9.1f MB\n", c->name, (long long)c->tensors,
                    (double)c->params / 1e6, (double)c->bytes / 1e6);
            tp += c->params;
            tb += c->bytes;
        }
        fprintf(stderr, "%-15s %6zu tensors %10.2fM params %9.1f MB (%s) -> %s in %.1fs\n", "total", job.n_items,
                (double)tp / 1e6, (double)tb / 1e6, stdcpu_quant_mode_name(o.mode), o.out,
                cli_progress_clock() - t0);
    }
    for (size_t i = 0; i < job.n_items; i++)
        free(job.items[i].name);
    free(job.items);
    for (int i = 0; i < job.n_comps; i++) {
        stdcpu_json_free(job.comps[i].config);
        for (int s = 0; s < job.comps[i].n_shards; s++)
            stdcpu_st_close(job.comps[i].shards[s]);
    }
    stdcpu_st_close(job.ckpt);
    return st == STDCPU_OK ? 0 : 1;
}
