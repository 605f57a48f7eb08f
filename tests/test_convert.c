/* Conversion: parameter enumeration from configs against the golden tiny
 * models, single-file name mapping, and the convert tool end to end. */
/* POSIX (mmap, strdup, mkstemp, fnmatch, clock_gettime) also under strict -std=c11 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdint.h>
#include <unistd.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/json.h"
#include "core/names.h"
#include "core/safetensors.h"
#include "testutil.h"

#include <sys/wait.h>

/* Test command lines and names are built with snprintf into fixed buffers
 * large enough for the paths involved; gcc cannot prove that. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wformat-truncation"
#endif

#include "core/stdm.h"
#include "simd/eltwise.h"

/* ---- helpers ----------------------------------------------------------- */

/* Runs stdcpu-convert with args; returns its exit code, or -1 when the build
 * folder is unknown (test run by hand). */
static int run_convert(const char *args)
{
    const char *bd = getenv("STDCPU_BUILDDIR"), *wrap = getenv("STDCPU_TEST_WRAPPER");
    if (!bd)
        return -1;
    char *cmd = malloc(16384);
    snprintf(cmd, 16384, "%s %s/stdcpu-convert -q %s", wrap ? wrap : "", bd, args);
    int rc = system(cmd);
    free(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

static char gm[4096]; /* golden/models */

static int have_golden(void)
{
    const char *p = stdcpu_test_shared("golden/models");
    if (!p || !getenv("STDCPU_BUILDDIR"))
        return 0;
    snprintf(gm, sizeof gm, "%s", p);
    return 1;
}

/* A path in the test's temporary folder (8 rotating buffers). */
static const char *out_path(const char *name)
{
    static char buf[8][4096];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", stdcpu_test_tmpdir(), name);
    return buf[k];
}

/* Compares every tensor of a source safetensors (keys prefixed by comp) with
 * the .stdm. mode: 0 exact f32, 1 policy storage (int8 within scale/2, f16 =
 * rounded source, f32 exact). skip: tensors (canonical) that a LoRA changed. */
static size_t compare_source(const stdcpu_stdm *m, const char *file, const char *comp, int mode)
{
    stdcpu_safetensors *st;
    stdcpu_error err;
    ck_assert_msg(stdcpu_st_open(&st, file, &err) == STDCPU_OK, "%s", err.msg);
    size_t n = 0;
    for (size_t i = 0; i < stdcpu_st_count(st); i++) {
        const stdcpu_st_tensor *s = stdcpu_st_at(st, i);
        if (strstr(s->name, "position_ids"))
            continue;
        char name[512];
        snprintf(name, sizeof name, "%s.%s", comp, s->name);
        const stdcpu_stdm_tensor *t = stdcpu_stdm_find(m, name);
        ck_assert_msg(t != NULL, "%s missing", name);
        ck_assert_int_eq(t->numel, s->numel);
        ck_assert_int_eq(t->ndim, s->ndim);
        float *ref;
        ck_assert_int_eq(stdcpu_st_to_f32(s, &ref, &err), STDCPU_OK);
        int64_t rows = t->ndim ? t->shape[0] : 1, cols = rows ? t->numel / rows : 0;
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) {
                size_t k = (size_t)(r * cols + c);
                float got;
                int ok;
                if (t->dtype == STDCPU_DT_F32)
                    got = ((const float *)t->data)[k];
                else if (t->dtype == STDCPU_DT_F16)
                    got = stdcpu_f16_to_f32(((const uint16_t *)t->data)[k]);
                else
                    got = t->scales[r] * (float)((const int8_t *)t->data)[k];
                if (mode == 0 || t->dtype == STDCPU_DT_F32)
                    ok = got == ref[k];
                else if (t->dtype == STDCPU_DT_F16)
                    ok = got == stdcpu_f16_to_f32(stdcpu_f32_to_f16(ref[k]));
                else
                    ok = fabsf(got - ref[k]) <= t->scales[r] * 0.5f * (1 + 1e-5f) + 1e-30f;
                /* one assertion per failure only: Check records every passing assert (slow) */
                if (!ok)
                    ck_abort_msg("%s[%zu] (%s): %g vs %g", name, k, stdcpu_dtype_name(t->dtype), got, ref[k]);
            }
        if (mode == 0)
            ck_assert_int_eq(t->dtype, STDCPU_DT_F32);
        stdcpu_aligned_free(ref);
        n++;
    }
    stdcpu_st_close(st);
    return n;
}

static const char *gfile(const char *rel)
{
    static char buf[4][4096];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", gm, rel);
    return buf[k];
}

/* ---- a minimal safetensors writer for synthetic LoRA files ------------- */

typedef struct {
    char name[256];
    int ndim;
    int64_t shape[4];
    const float *data; /* F32 */
} st_entry;

static void write_safetensors(const char *path, const st_entry *e, size_t n, const char *metadata)
{
    stdcpu_strbuf h = {0};
    size_t off = 0;
    stdcpu_strbuf_printf(&h, "{");
    if (metadata)
        stdcpu_strbuf_printf(&h, "\"__metadata__\":%s,", metadata);
    for (size_t i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int d = 0; d < e[i].ndim; d++)
            numel *= e[i].shape[d];
        stdcpu_strbuf_json_string(&h, e[i].name);
        stdcpu_strbuf_printf(&h, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < e[i].ndim; d++)
            stdcpu_strbuf_printf(&h, d ? ",%lld" : "%lld", (long long)e[i].shape[d]);
        stdcpu_strbuf_printf(&h, "],\"data_offsets\":[%zu,%zu]}%s", off, off + (size_t)numel * 4, i + 1 < n ? "," : "");
        off += (size_t)numel * 4;
    }
    stdcpu_strbuf_printf(&h, "}");
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint64_t hl = h.len;
    fwrite(&hl, 8, 1, f);
    fwrite(h.p, 1, h.len, f);
    for (size_t i = 0; i < n; i++) {
        int64_t numel = 1;
        for (int d = 0; d < e[i].ndim; d++)
            numel *= e[i].shape[d];
        fwrite(e[i].data, 4, (size_t)numel, f);
    }
    fclose(f);
    stdcpu_strbuf_free(&h);
}

static int checked_models;

/* Compares the enumeration of dir/config.json with dir/<weights>. */
static void check_enum(const char *dir, const char *weights)
{
    char rel[512];
    snprintf(rel, sizeof rel, "golden/models/%s/config.json", dir);
    const char *p = stdcpu_test_shared(rel);
    if (!p)
        return;
    stdcpu_json_doc *doc;
    stdcpu_error err;
    ck_assert_msg(stdcpu_json_parse_file(&doc, p, &err) == STDCPU_OK, "%s", err.msg);
    stdcpu_param_list l = {0};
    ck_assert_msg(stdcpu_enum_params(stdcpu_json_root(doc), &l, &err) == STDCPU_OK, "%s: %s", dir, err.msg);
    stdcpu_param_list_sort(&l);
    snprintf(rel, sizeof rel, "golden/models/%s/%s", dir, weights);
    p = stdcpu_test_shared(rel);
    ck_assert_ptr_nonnull(p);
    stdcpu_safetensors *st;
    ck_assert_msg(stdcpu_st_open(&st, p, &err) == STDCPU_OK, "%s", err.msg);
    size_t matched = 0;
    for (size_t i = 0; i < stdcpu_st_count(st); i++) {
        const stdcpu_st_tensor *t = stdcpu_st_at(st, i);
        if (strstr(t->name, "position_ids"))
            continue; /* an HF buffer, not a parameter */
        const stdcpu_param *q = stdcpu_param_list_find(&l, t->name);
        ck_assert_msg(q != NULL, "%s: file tensor %s not enumerated", dir, t->name);
        ck_assert_msg(q->ndim == t->ndim, "%s: %s rank %d vs %d", dir, t->name, q->ndim, t->ndim);
        for (int d = 0; d < t->ndim; d++)
            ck_assert_msg(q->shape[d] == t->shape[d], "%s: %s dim %d: %lld vs %lld", dir, t->name, d,
                          (long long)q->shape[d], (long long)t->shape[d]);
        matched++;
    }
    for (size_t i = 0; i < l.n; i++)
        ck_assert_msg(stdcpu_st_find(st, l.items[i].name) != NULL, "%s: enumerated %s not in the file", dir,
                      l.items[i].name);
    ck_assert_uint_eq(matched, l.n);
    ck_assert_uint_gt(matched, 10);
    checked_models++;
    stdcpu_st_close(st);
    stdcpu_param_list_free(&l);
    stdcpu_json_free(doc);
}

START_TEST(test_enumeration_matches_golden_models)
{
    check_enum("sdxl_tiny/unet", "diffusion_pytorch_model.safetensors");
    check_enum("sdxl_tiny/vae", "diffusion_pytorch_model.safetensors");
    check_enum("sdxl_tiny/text_encoder", "model.safetensors");
    check_enum("sdxl_tiny/text_encoder_2", "model.safetensors");
    check_enum("sd15_tiny/unet", "diffusion_pytorch_model.safetensors");
    check_enum("sd15_tiny/vae", "diffusion_pytorch_model.safetensors");
    check_enum("sd15_tiny/text_encoder", "model.safetensors");
    check_enum("sdxl_motion_tiny/unet", "diffusion_pytorch_model.safetensors");
    check_enum("taesd_tiny", "diffusion_pytorch_model.safetensors");
    check_enum("ip_adapter_sdxl_tiny/image_encoder", "model.safetensors");
    ck_assert_int_eq(checked_models, stdcpu_test_shared("golden") ? 10 : 0);
}
END_TEST


START_TEST(test_convert_f32_exact_and_int8_bounds)
{
    if (!have_golden())
        return;
    char args[8192];
    const char *f32 = out_path("sdxl_f32.stdm");
    snprintf(args, sizeof args,
             "--base %s/sdxl_tiny --quant f32 --ip-adapter %s/ip_adapter_sdxl_tiny/ip-adapter_sdxl_vit-h_tiny.safetensors"
             " --image-encoder %s/ip_adapter_sdxl_tiny/image_encoder --motion-adapter %s/motion_adapter_sdxl_tiny"
             " --taesd %s/taesd_tiny -o %s",
             gm, gm, gm, gm, gm, f32);
    ck_assert_int_eq(run_convert(args), 0);
    const char *i8 = out_path("sdxl_int8.stdm");
    char *p = strstr(args, "--quant f32");
    memcpy(p, "--quant f16", 11); /* f16 first, then int8 from the same line */
    snprintf(strstr(args, " -o ") + 4, 4096, "%s", out_path("sdxl_f16.stdm"));
    ck_assert_int_eq(run_convert(args), 0);
    memmove(p, p + 11, strlen(p + 11) + 1); /* default: int8 */
    snprintf(strstr(args, " -o ") + 4, 4096, "%s", i8);
    ck_assert_int_eq(run_convert(args), 0);
    const char *modes[3] = {f32, out_path("sdxl_f16.stdm"), i8};
    char f16path[4096];
    snprintf(f16path, sizeof f16path, "%s", modes[1]);
    modes[1] = f16path;
    for (int mode = 0; mode < 3; mode++) {
        stdcpu_stdm *m;
        stdcpu_error err;
        ck_assert_msg(stdcpu_stdm_open(&m, mode == 0 ? f32 : mode == 1 ? f16path : i8, &err) == STDCPU_OK, "%s", err.msg);
        ck_assert_int_eq(stdcpu_stdm_verify(m, &err), STDCPU_OK);
        size_t n = 0;
        int cmpmode = mode ? 1 : 0;
        n += compare_source(m, gfile("sdxl_tiny/unet/diffusion_pytorch_model.safetensors"), "unet", cmpmode);
        n += compare_source(m, gfile("sdxl_tiny/vae/diffusion_pytorch_model.safetensors"), "vae", cmpmode);
        n += compare_source(m, gfile("sdxl_tiny/text_encoder/model.safetensors"), "text_encoder", cmpmode);
        n += compare_source(m, gfile("sdxl_tiny/text_encoder_2/model.safetensors"), "text_encoder_2", cmpmode);
        n += compare_source(m, gfile("ip_adapter_sdxl_tiny/ip-adapter_sdxl_vit-h_tiny.safetensors"), "ip_adapter", cmpmode);
        n += compare_source(m, gfile("ip_adapter_sdxl_tiny/image_encoder/model.safetensors"), "image_encoder", cmpmode);
        n += compare_source(m, gfile("motion_adapter_sdxl_tiny/diffusion_pytorch_model.safetensors"), "motion_adapter", cmpmode);
        n += compare_source(m, gfile("taesd_tiny/diffusion_pytorch_model.safetensors"), "taesd", cmpmode);
        ck_assert_uint_eq(n, stdcpu_stdm_tensor_count(m)); /* nothing extra */
        /* configs stored verbatim */
        ck_assert_int_eq(stdcpu_json_get_int(stdcpu_stdm_config(m, "unet"), "cross_attention_dim", 0), 80);
        ck_assert_str_eq(stdcpu_json_get_str(stdcpu_stdm_config(m, "scheduler"), "_class_name", ""),
                         "EulerDiscreteScheduler");
        const char *qm = stdcpu_json_get_str(stdcpu_json_get(stdcpu_stdm_index(m), "quant"), "mode", "");
        ck_assert_str_eq(qm, mode == 0 ? "f32" : mode == 1 ? "f16" : "int8");
        if (mode == 2) {
            ck_assert_int_eq(stdcpu_stdm_find(m, "unet.conv_in.weight")->dtype, STDCPU_DT_F16);
            ck_assert_int_eq(stdcpu_stdm_find(m, "unet.conv_in.bias")->dtype, STDCPU_DT_F32);
            size_t n8 = 0;
            for (size_t i = 0; i < stdcpu_stdm_tensor_count(m); i++)
                n8 += stdcpu_stdm_tensor_at(m, i)->dtype == STDCPU_DT_I8;
            ck_assert_uint_gt(n8, 50);
        }
        stdcpu_stdm_close(m);
    }
    /* --keep-f16 overrides the int8 choice */
    snprintf(strstr(args, " -o ") + 4, 4096, "%s --keep-f16 'unet.mid_block.*'", out_path("keep.stdm"));
    ck_assert_int_eq(run_convert(args), 0);
    stdcpu_stdm *m;
    ck_assert_int_eq(stdcpu_stdm_open(&m, out_path("keep.stdm"), NULL), STDCPU_OK);
    for (size_t i = 0; i < stdcpu_stdm_tensor_count(m); i++) {
        const stdcpu_stdm_tensor *t = stdcpu_stdm_tensor_at(m, i);
        if (!strncmp(t->name, "unet.mid_block.", 15))
            ck_assert_int_ne(t->dtype, STDCPU_DT_I8);
    }
    const stdcpu_json *keep = stdcpu_json_get(stdcpu_json_get(stdcpu_stdm_index(m), "quant"), "keep_f16");
    ck_assert_str_eq(stdcpu_json_str(stdcpu_json_at(keep, stdcpu_json_count(keep) - 1)), "unet.mid_block.*");
    stdcpu_stdm_close(m);
}
END_TEST

/* Reference fusion in double: W + s * B @ A. */
static void reference_fuse(const float *w, const float *a, const float *b, int64_t out, int64_t k, int64_t r, double s,
                           double *dst)
{
    for (int64_t o = 0; o < out; o++)
        for (int64_t j = 0; j < k; j++) {
            double acc = 0;
            for (int64_t q = 0; q < r; q++)
                acc += (double)b[o * r + q] * (double)a[q * k + j];
            dst[o * k + j] = (double)w[o * k + j] + s * acc;
        }
}

/* Checks every module of the PEFT LoRA in a converted f32 .stdm against the
 * reference with module scale `s` (mod: kohya rescale of A by 1). */
static void check_fused(const char *stdm_path, double s, int stride)
{
    stdcpu_stdm *m;
    stdcpu_error err;
    ck_assert_msg(stdcpu_stdm_open(&m, stdm_path, &err) == STDCPU_OK, "%s", err.msg);
    stdcpu_safetensors *lora, *base;
    ck_assert_int_eq(stdcpu_st_open(&lora, gfile("std_lora_sdxl_tiny/pytorch_lora_weights.safetensors"), &err), STDCPU_OK);
    ck_assert_int_eq(stdcpu_st_open(&base, gfile("sdxl_tiny/unet/diffusion_pytorch_model.safetensors"), &err), STDCPU_OK);
    size_t modules = 0;
    for (size_t i = 0; i < stdcpu_st_count(lora); i++) {
        const stdcpu_st_tensor *ta = stdcpu_st_at(lora, i);
        size_t n = strlen(ta->name);
        if (n < 14 || strcmp(ta->name + n - 14, ".lora_A.weight"))
            continue;
        if (modules++ % (size_t)stride)
            continue; /* sample every stride-th module (the full check runs once) */
        char mod[512], bname[512], wname[512];
        snprintf(mod, sizeof mod, "%.*s", (int)(n - 14 - 5), ta->name + 5); /* strip "unet." */
        snprintf(bname, sizeof bname, "unet.%s.lora_B.weight", mod);
        snprintf(wname, sizeof wname, "%s.weight", mod);
        const stdcpu_st_tensor *tb = stdcpu_st_find(lora, bname), *tw = stdcpu_st_find(base, wname);
        ck_assert(tb && tw);
        float *a, *b, *w;
        stdcpu_st_to_f32(ta, &a, NULL);
        stdcpu_st_to_f32(tb, &b, NULL);
        stdcpu_st_to_f32(tw, &w, NULL);
        int64_t out = tw->shape[0], k = tw->numel / out, r = ta->shape[0];
        double *ref = malloc((size_t)tw->numel * sizeof *ref);
        reference_fuse(w, a, b, out, k, r, s, ref);
        char cname[520];
        snprintf(cname, sizeof cname, "unet.%s", wname);
        const stdcpu_stdm_tensor *t = stdcpu_stdm_find(m, cname);
        ck_assert(t && t->dtype == STDCPU_DT_F32);
        for (int64_t j = 0; j < tw->numel; j++)
            if (!(fabs(((const float *)t->data)[j] - ref[j]) <= 1e-5 * (1 + fabs(ref[j]))))
                ck_abort_msg("%s[%lld]: %g vs %g", cname, (long long)j, ((const float *)t->data)[j], ref[j]);
        free(ref);
        stdcpu_aligned_free(a);
        stdcpu_aligned_free(b);
        stdcpu_aligned_free(w);
    }
    ck_assert_uint_eq(modules, 258);
    stdcpu_st_close(lora);
    stdcpu_st_close(base);
    stdcpu_stdm_close(m);
}

START_TEST(test_lora_peft_matches_reference_and_golden)
{
    if (!have_golden())
        return;
    char args[8192];
    const char *out = out_path("lora.stdm");
    snprintf(args, sizeof args, "--base %s/sdxl_tiny --quant f32 --lora %s/std_lora_sdxl_tiny/pytorch_lora_weights.safetensors -o %s",
             gm, gm, out);
    ck_assert_int_eq(run_convert(args), 0);
    check_fused(out, 1.0, 1);
    /* the golden fused.* outputs (diffusers' own fuse_lora), tolerance 1e-6 */
    const char *io = stdcpu_test_shared("golden/lora_sdxl_tiny/io.safetensors");
    stdcpu_safetensors *st;
    stdcpu_stdm *m;
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_st_open(&st, io, &err), STDCPU_OK);
    ck_assert_int_eq(stdcpu_stdm_open(&m, out, &err), STDCPU_OK);
    int seen = 0;
    for (size_t i = 0; i < stdcpu_st_count(st); i++) {
        const stdcpu_st_tensor *g = stdcpu_st_at(st, i);
        if (strncmp(g->name, "out.fused.", 10))
            continue;
        char name[512];
        snprintf(name, sizeof name, "unet.%s", g->name + 10);
        const stdcpu_stdm_tensor *t = stdcpu_stdm_find(m, name);
        ck_assert_ptr_nonnull(t);
        float *ref;
        stdcpu_st_to_f32(g, &ref, NULL);
        for (int64_t j = 0; j < g->numel; j++)
            if (!(fabsf(((const float *)t->data)[j] - ref[j]) <= 1e-6f))
                ck_abort_msg("%s[%lld]: %g vs %g", name, (long long)j, ((const float *)t->data)[j], ref[j]);
        stdcpu_aligned_free(ref);
        seen++;
    }
    ck_assert_int_eq(seen, 6);
    /* untouched tensors are bit-identical to the base */
    const stdcpu_stdm_tensor *t = stdcpu_stdm_find(m, "unet.conv_in.weight");
    stdcpu_safetensors *base;
    ck_assert_int_eq(stdcpu_st_open(&base, gfile("sdxl_tiny/unet/diffusion_pytorch_model.safetensors"), &err), STDCPU_OK);
    ck_assert(!memcmp(t->data, stdcpu_st_find(base, "conv_in.weight")->data, t->nbytes));
    stdcpu_st_close(base);
    stdcpu_stdm_close(m);
    stdcpu_st_close(st);
    /* a scale after the colon multiplies every delta */
    snprintf(args, sizeof args, "--base %s/sdxl_tiny --quant f32 --lora %s/std_lora_sdxl_tiny/pytorch_lora_weights.safetensors:0.5 -o %s",
             gm, gm, out);
    ck_assert_int_eq(run_convert(args), 0);
    check_fused(out, 0.5, 7);
}
END_TEST

/* The LDM path of a diffusers UNet weight of sdxl_tiny (without the
 * "model.diffusion_model." prefix), via the library's single-file map. */
static int ldm_name(const char *diffusers, char *out)
{
    stdcpu_json_doc *doc;
    ck_assert_int_eq(stdcpu_json_parse_file(&doc, gfile("sdxl_tiny/unet/config.json"), NULL), STDCPU_OK);
    stdcpu_param_list params = {0};
    stdcpu_ckpt_map_list map = {0};
    ck_assert_int_eq(stdcpu_enum_params(stdcpu_json_root(doc), &params, NULL), STDCPU_OK);
    ck_assert_int_eq(stdcpu_ckpt_map_component(STDCPU_CKPT_SDXL, "unet", stdcpu_json_root(doc), &params, NULL, NULL,
                                               &map, NULL),
                     STDCPU_OK);
    int found = 0;
    for (size_t i = 0; i < map.n && !found; i++)
        if (!strcmp(map.items[i].param->name, diffusers)) {
            snprintf(out, 600, "%s", map.items[i].src + 22);
            found = 1;
        }
    stdcpu_ckpt_map_list_free(&map);
    stdcpu_param_list_free(&params);
    stdcpu_json_free(doc);
    return found;
}

/* Rewrites the PEFT file in another key format; alpha (if > 0) stored per module. */
static void rewrite_lora(const char *path, int format, float alpha)
{
    stdcpu_safetensors *st;
    ck_assert_int_eq(stdcpu_st_open(&st, gfile("std_lora_sdxl_tiny/pytorch_lora_weights.safetensors"), NULL), STDCPU_OK);
    size_t n = stdcpu_st_count(st);
    st_entry *e = calloc(2 * n, sizeof *e);
    float **bufs = calloc(n, sizeof *bufs);
    static const float alpha_buf[1] = {0};
    float *alpha_val = malloc(sizeof(float));
    *alpha_val = alpha;
    (void)alpha_buf;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const stdcpu_st_tensor *t = stdcpu_st_at(st, i);
        size_t len = strlen(t->name);
        int is_a = !strcmp(t->name + len - 14, ".lora_A.weight");
        char mod[512];
        snprintf(mod, sizeof mod, "%.*s", (int)(len - 14 - 5), t->name + 5);
        stdcpu_st_to_f32(t, &bufs[i], NULL);
        e[k].ndim = t->ndim;
        for (int d = 0; d < t->ndim; d++)
            e[k].shape[d] = t->shape[d];
        e[k].data = bufs[i];
        if (format == 2) { /* kohya, original LDM/SGM module path (sd-scripts SDXL) */
            char w[600], ldm[600];
            snprintf(w, sizeof w, "%s.weight", mod);
            ck_assert_msg(ldm_name(w, ldm), "no LDM name for %s", w);
            ldm[strlen(ldm) - 7] = '\0';
            for (char *c = ldm; *c; c++)
                if (*c == '.')
                    *c = '_';
            snprintf(e[k].name, sizeof e[k].name, "lora_unet_%s.%s", ldm, is_a ? "lora_down.weight" : "lora_up.weight");
        } else if (format == 0) { /* kohya */
            for (char *c = mod; *c; c++)
                if (*c == '.')
                    *c = '_';
            snprintf(e[k].name, sizeof e[k].name, "lora_unet_%s.%s", mod, is_a ? "lora_down.weight" : "lora_up.weight");
        } else { /* old diffusers */
            snprintf(e[k].name, sizeof e[k].name, "unet.%s.lora.%s", mod, is_a ? "down.weight" : "up.weight");
        }
        k++;
        if (is_a && alpha > 0) {
            char stem[256];
            snprintf(stem, sizeof stem, "%s", e[k - 1].name);
            *strchr(stem, '.') = '\0';
            snprintf(e[k].name, sizeof e[k].name, "%s.alpha", stem);
            e[k].ndim = 0;
            e[k].data = alpha_val;
            k++;
        }
    }
    write_safetensors(path, e, k, NULL);
    for (size_t i = 0; i < n; i++)
        stdcpu_aligned_free(bufs[i]);
    free(bufs);
    free(e);
    free(alpha_val);
    stdcpu_st_close(st);
}

START_TEST(test_lora_kohya_and_old_diffusers)
{
    if (!have_golden())
        return;
    char args[8192];
    const char *kohya = out_path("kohya.safetensors"), *old = out_path("old.safetensors"), *out = out_path("k.stdm");
    rewrite_lora(kohya, 0, 2.0f); /* rank 4, alpha 2: module scale 0.5 */
    snprintf(args, sizeof args, "--base %s/sdxl_tiny --quant f32 --lora %s:0.8 -o %s", gm, kohya, out);
    ck_assert_int_eq(run_convert(args), 0);
    check_fused(out, 0.8 * 2.0 / 4.0, 7);
    rewrite_lora(old, 1, 0);
    snprintf(args, sizeof args, "--base %s/sdxl_tiny --quant f32 --lora %s -o %s", gm, old, out);
    ck_assert_int_eq(run_convert(args), 0);
    check_fused(out, 1.0, 7);
    const char *kohya_ldm = out_path("kohya_ldm.safetensors");
    rewrite_lora(kohya_ldm, 2, 8.0f); /* alpha 8, rank 4: module scale 2 */
    snprintf(args, sizeof args, "--base %s/sdxl_tiny --quant f32 --lora %s -o %s", gm, kohya_ldm, out);
    ck_assert_int_eq(run_convert(args), 0);
    check_fused(out, 2.0, 7);
    /* two LoRAs add up */
    snprintf(args, sizeof args, "--base %s/sdxl_tiny --quant f32 --lora %s:0.25 --lora %s:0.5 -o %s", gm, old, old, out);
    ck_assert_int_eq(run_convert(args), 0);
    check_fused(out, 0.75, 7);
}
END_TEST

START_TEST(test_lora_unknown_keys_fail_without_output)
{
    if (!have_golden())
        return;
    float a[4 * 16] = {0}, b[16 * 4] = {0};
    st_entry e[3] = {
        {"unet.down_blocks.0.resnets.0.conv_nope.lora_A.weight", 2, {4, 16}, a},
        {"unet.down_blocks.0.resnets.0.conv_nope.lora_B.weight", 2, {16, 4}, b},
        {"unet.something.hada_w1_a", 2, {4, 16}, a},
    };
    const char *bad = out_path("bad_lora.safetensors"), *out = out_path("never.stdm");
    char args[8192];
    write_safetensors(bad, e, 3, NULL);
    snprintf(args, sizeof args, "--base %s/sdxl_tiny --lora %s -o %s 2>/dev/null", gm, bad, out);
    ck_assert_int_eq(run_convert(args), 1);
    ck_assert_int_ne(access(out, F_OK), 0);
    write_safetensors(bad, e, 2, NULL); /* only the unknown module */
    ck_assert_int_eq(run_convert(args), 1);
    ck_assert_int_ne(access(out, F_OK), 0);
}
END_TEST

START_TEST(test_random_from_configs)
{
    if (!have_golden())
        return;
    char args[8192];
    const char *out = out_path("random.stdm");
    /* the tiny model folders double as config folders: --random reads only config.json */
    snprintf(args, sizeof args, "--random %s/sd15_tiny --quant f32 --seed 3 -o %s", gm, out);
    ck_assert_int_eq(run_convert(args), 0);
    stdcpu_stdm *m;
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_stdm_open(&m, out, &err), STDCPU_OK);
    stdcpu_safetensors *st;
    ck_assert_int_eq(stdcpu_st_open(&st, gfile("sd15_tiny/unet/diffusion_pytorch_model.safetensors"), &err), STDCPU_OK);
    size_t unet = 0;
    for (size_t i = 0; i < stdcpu_stdm_tensor_count(m); i++) {
        const stdcpu_stdm_tensor *t = stdcpu_stdm_tensor_at(m, i);
        if (strncmp(t->name, "unet.", 5))
            continue;
        const stdcpu_st_tensor *s = stdcpu_st_find(st, t->name + 5);
        ck_assert_msg(s && s->numel == t->numel, "%s", t->name);
        const float *v = t->data;
        double sum2 = 0;
        int finite = 1;
        for (int64_t j = 0; j < t->numel; j++) {
            finite &= isfinite(v[j]) != 0;
            sum2 += (double)v[j] * v[j];
        }
        ck_assert_msg(finite, "%s has non-finite values", t->name);
        if (t->ndim >= 2 && t->numel >= 256) { /* std ~ 1/sqrt(fan_in) */
            double fan_in = (double)t->numel / (double)t->shape[0], std = sqrt(sum2 / (double)t->numel);
            ck_assert_msg(fabs(std * sqrt(fan_in) - 1) < 0.2, "%s std %g", t->name, std);
        }
        if (strstr(t->name, "norm") && strstr(t->name, ".weight") && t->ndim == 1)
            ck_assert(v[0] == 1.0f);
        unet++;
    }
    ck_assert_uint_eq(unet, stdcpu_st_count(st));
    ck_assert(stdcpu_stdm_has_component(m, "vae") && stdcpu_stdm_has_component(m, "text_encoder"));
    stdcpu_st_close(st);
    stdcpu_stdm_close(m);
}
END_TEST

/* Builds a single-file checkpoint from a golden diffusers model with the
 * inverse of the mapping (fused OpenCLIP q/k/v, transposed projection, VAE
 * attention as 1x1 convs, plus unrelated extra keys), converts it back and
 * requires every tensor to equal the diffusers original. */
static void single_file_round_trip(const char *model, stdcpu_ckpt_layout layout)
{
    static const char *const comps[] = {"unet", "vae", "text_encoder", "text_encoder_2"};
    static const char *const files[] = {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.safetensors",
                                        "model.safetensors", "model.safetensors"};
    enum { MAXE = 4096 };
    st_entry *e = calloc(MAXE, sizeof *e);
    float **bufs = calloc(MAXE, sizeof *bufs);
    size_t ne = 0;
    int ncomp = layout == STDCPU_CKPT_SDXL ? 4 : 3;
    for (int c = 0; c < ncomp; c++) {
        char rel[512];
        snprintf(rel, sizeof rel, "%s/%s/config.json", model, comps[c]);
        stdcpu_json_doc *doc;
        stdcpu_error err;
        ck_assert_int_eq(stdcpu_json_parse_file(&doc, gfile(rel), &err), STDCPU_OK);
        stdcpu_param_list params = {0};
        stdcpu_ckpt_map_list map = {0};
        ck_assert_int_eq(stdcpu_enum_params(stdcpu_json_root(doc), &params, &err), STDCPU_OK);
        ck_assert_msg(stdcpu_ckpt_map_component(layout, comps[c], stdcpu_json_root(doc), &params, NULL, NULL, &map,
                                                &err) == STDCPU_OK, "%s", err.msg);
        ck_assert_uint_eq(map.n, params.n);
        snprintf(rel, sizeof rel, "%s/%s/%s", model, comps[c], files[c]);
        stdcpu_safetensors *st;
        ck_assert_int_eq(stdcpu_st_open(&st, gfile(rel), &err), STDCPU_OK);
        for (size_t i = 0; i < map.n; i++) {
            const stdcpu_ckpt_map *m = &map.items[i];
            const stdcpu_st_tensor *t = stdcpu_st_find(st, m->param->name);
            ck_assert_ptr_nonnull(t);
            float *v;
            stdcpu_st_to_f32(t, &v, NULL);
            size_t k = 0;
            while (k < ne && strcmp(e[k].name, m->src))
                k++;
            if (k == ne) { /* new source tensor */
                ck_assert_uint_lt(ne, MAXE);
                snprintf(e[k].name, sizeof e[k].name, "%s", m->src);
                e[k].ndim = t->ndim;
                for (int d = 0; d < t->ndim; d++)
                    e[k].shape[d] = t->shape[d];
                int64_t rows = t->ndim ? t->shape[0] : 1, cols = rows ? t->numel / rows : 0;
                if (m->row_begin >= 0) { /* fused in_proj: three slices */
                    e[k].shape[0] = 3 * rows;
                    bufs[k] = calloc((size_t)(3 * rows * cols), sizeof(float));
                } else {
                    bufs[k] = calloc((size_t)t->numel + 1, sizeof(float));
                }
                if (m->transpose) {
                    e[k].shape[0] = t->shape[1];
                    e[k].shape[1] = t->shape[0];
                }
                if (!strcmp(comps[c], "vae") && strstr(m->src, "attn_1.") && t->ndim == 2) {
                    e[k].ndim = 4; /* old VAE files store attention as 1x1 convs */
                    e[k].shape[2] = e[k].shape[3] = 1;
                }
                e[k].data = bufs[k];
                ne++;
            }
            int64_t rows = t->ndim ? t->shape[0] : 1, cols = rows ? t->numel / rows : 0;
            if (m->transpose) {
                for (int64_t a = 0; a < rows; a++)
                    for (int64_t b = 0; b < cols; b++)
                        bufs[k][b * rows + a] = v[a * cols + b];
            } else {
                int64_t r0 = m->row_begin >= 0 ? m->row_begin : 0;
                memcpy(bufs[k] + r0 * cols, v, (size_t)t->numel * sizeof(float));
            }
            stdcpu_aligned_free(v);
        }
        stdcpu_st_close(st);
        stdcpu_ckpt_map_list_free(&map);
        stdcpu_param_list_free(&params);
        stdcpu_json_free(doc);
    }
    /* keys a real checkpoint carries that must be ignored */
    static const float junk[4] = {1, 2, 3, 4};
    snprintf(e[ne].name, sizeof e[ne].name, "alphas_cumprod");
    e[ne].ndim = 1;
    e[ne].shape[0] = 4;
    e[ne++].data = junk;
    snprintf(e[ne].name, sizeof e[ne].name, "model_ema.decay");
    e[ne].ndim = 0;
    e[ne++].data = junk;
    const char *ckpt = out_path("single.safetensors"), *out = out_path("single.stdm");
    write_safetensors(ckpt, e, ne, "{\"format\":\"pt\"}");
    for (size_t i = 0; i < ne; i++)
        if (e[i].data != junk)
            free(bufs[i]);
    free(bufs);
    free(e);
    char args[8192];
    snprintf(args, sizeof args, "--base %s --config %s/%s --quant f32 -o %s", ckpt, gm, model, out);
    ck_assert_int_eq(run_convert(args), 0);
    stdcpu_stdm *m;
    stdcpu_error err;
    ck_assert_int_eq(stdcpu_stdm_open(&m, out, &err), STDCPU_OK);
    size_t n = 0;
    for (int c = 0; c < ncomp; c++) {
        char rel[512];
        snprintf(rel, sizeof rel, "%s/%s/%s", model, comps[c], files[c]);
        n += compare_source(m, gfile(rel), comps[c], 0);
    }
    ck_assert_uint_eq(n, stdcpu_stdm_tensor_count(m));
    ck_assert_ptr_nonnull(stdcpu_stdm_config(m, "scheduler"));
    stdcpu_stdm_close(m);
    /* without --config: a clear error and no output */
    unlink(out);
    snprintf(args, sizeof args, "--base %s -o %s 2>/dev/null", ckpt, out);
    ck_assert_int_eq(run_convert(args), 1);
    ck_assert_int_ne(access(out, F_OK), 0);
}

START_TEST(test_single_file_sdxl_round_trip)
{
    if (have_golden())
        single_file_round_trip("sdxl_tiny", STDCPU_CKPT_SDXL);
}
END_TEST

START_TEST(test_single_file_sd15_round_trip)
{
    if (have_golden())
        single_file_round_trip("sd15_tiny", STDCPU_CKPT_SD1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("convert");
    TCase *tc = tcase_create("convert");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_enumeration_matches_golden_models);
    tcase_add_test(tc, test_convert_f32_exact_and_int8_bounds);
    tcase_add_test(tc, test_lora_peft_matches_reference_and_golden);
    tcase_add_test(tc, test_lora_kohya_and_old_diffusers);
    tcase_add_test(tc, test_lora_unknown_keys_fail_without_output);
    tcase_add_test(tc, test_random_from_configs);
    tcase_add_test(tc, test_single_file_sdxl_round_trip);
    tcase_add_test(tc, test_single_file_sd15_round_trip);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
