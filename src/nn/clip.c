/* CLIP encoders: config, weight loading, the shared transformer encoder, the
 * text and vision embeddings and heads (golden README 3.2, 3.3). */
#include "config.h"

#include "nn/clip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/arena.h"
#include "core/ops_gemm.h"
#include "core/quant.h"
#include "core/safetensors.h"
#include "io/imageops.h"

/* One pre-LN encoder layer: x += out_proj(MHA(LN1(x))); x += fc2(act(fc1(LN2(x)))). */
typedef struct clip_layer {
    stdcpu_nn_norm ln1, ln2;       /* [H] */
    stdcpu_linear_weight q, k, v;  /* [H, H] + bias */
    stdcpu_linear_weight out;      /* [H, H] + bias */
    stdcpu_linear_weight fc1;      /* [I, H] + bias */
    stdcpu_linear_weight fc2;      /* [H, I] + bias */
} clip_layer;

/* The token embedding table in its stored dtype (the bigG table is 49408 x
 * 1280: converting it to f32 up front would cost 250 MB for 154 rows used). */
typedef struct clip_table {
    stdcpu_dtype dtype; /* F32, F16, BF16 or I8 */
    size_t rows, cols;
    void *data;         /* [rows, cols] */
    float *scales;      /* I8: [rows] */
} clip_table;

struct stdcpu_clip {
    stdcpu_clip_config cfg;
    stdcpu_precision prec;
    clip_layer *layers;       /* [L] */
    size_t n_layers_loaded;
    float *pos;               /* [positions, H]: text max_positions, vision (S/p)^2 + 1 */
    size_t positions;
    stdcpu_linear_weight proj; /* [P, H] no bias; has_proj */
    int has_proj;
    /* text */
    clip_table tok;           /* [vocab, H] */
    stdcpu_nn_norm final_ln;  /* [H] */
    /* vision */
    float *class_emb;         /* [H] */
    stdcpu_linear_weight patch; /* [H, C*p*p], columns in (c, ky, kx) order */
    int has_patch;
    stdcpu_nn_norm pre_ln, post_ln; /* [H] */
    /* activations */
    stdcpu_arena arena;
    size_t peak;
};

/* ---- config ------------------------------------------------------------------ */

static stdcpu_status cfg_size(const stdcpu_json *cfg, const char *key, int64_t dflt, size_t *out, stdcpu_error *err)
{
    const stdcpu_json *v = stdcpu_json_get(cfg, key);
    int64_t x = dflt;
    if (v && !stdcpu_json_int(v, &x))
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "CLIP config: %s is not an integer", key);
    if (x <= 0 || x > ((int64_t)1 << 24))
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "CLIP config: %s = %lld is out of range", key, (long long)x);
    *out = (size_t)x;
    return STDCPU_OK;
}

stdcpu_status stdcpu_clip_config_from_json(const stdcpu_json *cfg, stdcpu_clip_config *out, stdcpu_error *err)
{
    if (!cfg || cfg->type != STDCPU_JSON_OBJECT)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "CLIP config: not a JSON object");
    memset(out, 0, sizeof *out);
    const char *mt = stdcpu_json_get_str(cfg, "model_type", NULL);
    int vision;
    if (mt && !strcmp(mt, "clip_vision_model"))
        vision = 1;
    else if (mt && !strcmp(mt, "clip_text_model"))
        vision = 0;
    else if (mt)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "CLIP config: model_type \"%s\" is not a CLIP text or "
                           "vision model", mt);
    else
        vision = stdcpu_json_get(cfg, "image_size") != NULL;
    out->kind = vision ? STDCPU_CLIP_VISION : STDCPU_CLIP_TEXT;

    /* Absent keys take the transformers defaults of CLIPTextConfig / CLIPVisionConfig. */
    STDCPU_TRY(cfg_size(cfg, "hidden_size", vision ? 768 : 512, &out->hidden, err));
    STDCPU_TRY(cfg_size(cfg, "num_attention_heads", vision ? 12 : 8, &out->heads, err));
    STDCPU_TRY(cfg_size(cfg, "num_hidden_layers", 12, &out->layers, err));
    STDCPU_TRY(cfg_size(cfg, "intermediate_size", vision ? 3072 : 2048, &out->intermediate, err));
    STDCPU_TRY(cfg_size(cfg, "projection_dim", 512, &out->projection_dim, err));
    if (vision) {
        STDCPU_TRY(cfg_size(cfg, "image_size", 224, &out->image_size, err));
        STDCPU_TRY(cfg_size(cfg, "patch_size", 32, &out->patch_size, err));
        STDCPU_TRY(cfg_size(cfg, "num_channels", 3, &out->channels, err));
        if (out->image_size % out->patch_size)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "CLIP config: image_size %zu is not a multiple of "
                               "patch_size %zu", out->image_size, out->patch_size);
    } else {
        STDCPU_TRY(cfg_size(cfg, "vocab_size", 49408, &out->vocab, err));
        STDCPU_TRY(cfg_size(cfg, "max_position_embeddings", 77, &out->max_positions, err));
    }
    if (out->hidden % out->heads)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "CLIP config: hidden_size %zu is not divisible by "
                           "num_attention_heads %zu", out->hidden, out->heads);
    const double eps = stdcpu_json_get_double(cfg, "layer_norm_eps", 1e-5);
    if (!(eps > 0 && eps < 1))
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "CLIP config: layer_norm_eps %g is out of range", eps);
    out->eps = (float)eps;
    const char *act = stdcpu_json_get_str(cfg, "hidden_act", "quick_gelu");
    if (!strcmp(act, "quick_gelu"))
        out->act = STDCPU_ELT_QUICK_GELU;
    else if (!strcmp(act, "gelu"))
        out->act = STDCPU_ELT_GELU;
    else if (!strcmp(act, "gelu_new") || !strcmp(act, "gelu_pytorch_tanh"))
        out->act = STDCPU_ELT_GELU_TANH;
    else
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "CLIP config: hidden_act \"%s\" is not supported", act);
    return STDCPU_OK;
}

/* ---- loading ----------------------------------------------------------------- */

static stdcpu_status load_linear_checked(stdcpu_linear_weight *lw, const stdcpu_wsrc *w, const char *prefix,
                                         stdcpu_precision p, size_t n_expect, size_t k_expect, stdcpu_error *err)
{
    size_t n = 0, k = 0;
    STDCPU_TRY(stdcpu_nn_load_linear(lw, w, prefix, p, (int64_t)k_expect, &n, &k, err));
    if (n != n_expect || k != k_expect) {
        stdcpu_linear_weight_free(lw);
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s.weight is [%zu, %zu], the config says [%zu, %zu]", prefix,
                           n, k, n_expect, k_expect);
    }
    return STDCPU_OK;
}

static stdcpu_status load_layer(clip_layer *ly, const stdcpu_wsrc *w, const char *root, size_t l,
                                const stdcpu_clip_config *c, stdcpu_precision p, stdcpu_error *err)
{
    char pre[256];
    const size_t H = c->hidden, I = c->intermediate;
#define LAYER_NAME(suffix) snprintf(pre, sizeof pre, "%s.encoder.layers.%zu.%s", root, l, suffix)
    LAYER_NAME("layer_norm1");
    STDCPU_TRY(stdcpu_nn_load_norm(&ly->ln1, w, pre, (int64_t)H, err));
    LAYER_NAME("layer_norm2");
    STDCPU_TRY(stdcpu_nn_load_norm(&ly->ln2, w, pre, (int64_t)H, err));
    LAYER_NAME("self_attn.q_proj");
    STDCPU_TRY(load_linear_checked(&ly->q, w, pre, p, H, H, err));
    LAYER_NAME("self_attn.k_proj");
    STDCPU_TRY(load_linear_checked(&ly->k, w, pre, p, H, H, err));
    LAYER_NAME("self_attn.v_proj");
    STDCPU_TRY(load_linear_checked(&ly->v, w, pre, p, H, H, err));
    LAYER_NAME("self_attn.out_proj");
    STDCPU_TRY(load_linear_checked(&ly->out, w, pre, p, H, H, err));
    LAYER_NAME("mlp.fc1");
    STDCPU_TRY(load_linear_checked(&ly->fc1, w, pre, p, I, H, err));
    LAYER_NAME("mlp.fc2");
    STDCPU_TRY(load_linear_checked(&ly->fc2, w, pre, p, H, I, err));
#undef LAYER_NAME
    return STDCPU_OK;
}

static void free_layer(clip_layer *ly)
{
    stdcpu_nn_norm_free(&ly->ln1);
    stdcpu_nn_norm_free(&ly->ln2);
    stdcpu_linear_weight_free(&ly->q);
    stdcpu_linear_weight_free(&ly->k);
    stdcpu_linear_weight_free(&ly->v);
    stdcpu_linear_weight_free(&ly->out);
    stdcpu_linear_weight_free(&ly->fc1);
    stdcpu_linear_weight_free(&ly->fc2);
}

static stdcpu_status load_table(clip_table *t, const stdcpu_wsrc *w, const char *name, size_t rows, size_t cols,
                                stdcpu_error *err)
{
    stdcpu_wview v;
    STDCPU_TRY(stdcpu_wsrc_get(w, name, &v, err));
    if (v.ndim != 2 || (size_t)v.shape[0] != rows || (size_t)v.shape[1] != cols)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s of %s does not match the config's [%zu, %zu]", name,
                           stdcpu_wsrc_component(w), rows, cols);
    if (v.dtype != STDCPU_DT_F32 && v.dtype != STDCPU_DT_F16 && v.dtype != STDCPU_DT_BF16 && v.dtype != STDCPU_DT_I8)
        return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "%s: dtype %s is not supported", name,
                           stdcpu_dtype_name(v.dtype));
    if (v.dtype == STDCPU_DT_I8 && !v.scales)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s: int8 without scales", name);
    size_t n, bytes;
    if (stdcpu_mul_size(rows, cols, &n) || stdcpu_mul_size(n, stdcpu_dtype_size(v.dtype), &bytes))
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "%s: too large", name);
    t->dtype = v.dtype;
    t->rows = rows;
    t->cols = cols;
    if (!(t->data = stdcpu_aligned_alloc(bytes)))
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: no memory for %zu bytes", name, bytes);
    memcpy(t->data, v.data, bytes);
    if (v.dtype == STDCPU_DT_I8) {
        if (!(t->scales = stdcpu_aligned_alloc(rows * sizeof(float))))
            return stdcpu_fail(err, STDCPU_ERR_NOMEM, "%s: no memory for scales", name);
        memcpy(t->scales, v.scales, rows * sizeof(float));
    }
    stdcpu_wsrc_release(w, name); /* resident once, as the copy */
    return STDCPU_OK;
}

/* dst[0..cols) = row r of the table as f32. */
static void table_row(const clip_table *t, size_t r, float *dst)
{
    const size_t C = t->cols;
    switch (t->dtype) {
    case STDCPU_DT_F32:
        memcpy(dst, (const float *)t->data + r * C, C * sizeof(float));
        break;
    case STDCPU_DT_F16:
        stdcpu_f16_to_f32_array((const uint16_t *)t->data + r * C, dst, C);
        break;
    case STDCPU_DT_BF16:
        for (size_t c = 0; c < C; c++)
            dst[c] = stdcpu_bf16_to_f32(((const uint16_t *)t->data)[r * C + c]);
        break;
    default: /* I8 */
        for (size_t c = 0; c < C; c++)
            dst[c] = t->scales[r] * (float)((const int8_t *)t->data)[r * C + c];
        break;
    }
}

static stdcpu_status load_text(stdcpu_clip *m, const stdcpu_wsrc *w, stdcpu_error *err)
{
    const stdcpu_clip_config *c = &m->cfg;
    const size_t H = c->hidden;
    STDCPU_TRY(load_table(&m->tok, w, "text_model.embeddings.token_embedding.weight", c->vocab, H, err));
    m->positions = c->max_positions;
    STDCPU_TRY(stdcpu_wsrc_read_f32_checked(w, "text_model.embeddings.position_embedding.weight", 2,
                                            (int64_t)(m->positions * H), &m->pos, NULL, err));
    STDCPU_TRY(stdcpu_nn_load_norm(&m->final_ln, w, "text_model.final_layer_norm", (int64_t)H, err));
    return STDCPU_OK;
}

static stdcpu_status load_vision(stdcpu_clip *m, const stdcpu_wsrc *w, stdcpu_error *err)
{
    const stdcpu_clip_config *c = &m->cfg;
    const size_t H = c->hidden, p = c->patch_size, np = c->image_size / p;
    m->positions = np * np + 1;
    STDCPU_TRY(stdcpu_nn_load_vec(&m->class_emb, w, "vision_model.embeddings.class_embedding", (int64_t)H, err));
    STDCPU_TRY(stdcpu_wsrc_read_f32_checked(w, "vision_model.embeddings.position_embedding.weight", 2,
                                            (int64_t)(m->positions * H), &m->pos, NULL, err));
    /* The stride-p convolution without padding is a GEMM over the patches:
     * weight [H, C, p, p] = [H, C*p*p] with columns in (c, ky, kx) order. It
     * stays f32 (the quantisation policy keeps embeddings in float). */
    float *pw = NULL;
    stdcpu_wview v;
    const char *pname = "vision_model.embeddings.patch_embedding.weight";
    STDCPU_TRY(stdcpu_wsrc_read_f32(w, pname, &pw, &v, err));
    const size_t K = c->channels * p * p;
    stdcpu_status st = STDCPU_OK;
    if (v.ndim != 4 || (size_t)v.shape[0] != H || (size_t)v.shape[1] != c->channels || (size_t)v.shape[2] != p ||
        (size_t)v.shape[3] != p)
        st = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: expected [%zu, %zu, %zu, %zu]", pname, H, c->channels, p, p);
    else if (!(st = stdcpu_linear_weight_init_f32(&m->patch, pw, NULL, H, K, err)))
        m->has_patch = 1;
    stdcpu_aligned_free(pw);
    STDCPU_TRY(st);
    STDCPU_TRY(stdcpu_nn_load_norm(&m->pre_ln, w, "vision_model.pre_layrnorm", (int64_t)H, err));
    STDCPU_TRY(stdcpu_nn_load_norm(&m->post_ln, w, "vision_model.post_layernorm", (int64_t)H, err));
    return STDCPU_OK;
}

static stdcpu_status load_all(stdcpu_clip *m, const stdcpu_wsrc *w, stdcpu_error *err)
{
    const stdcpu_clip_config *c = &m->cfg;
    const int text = c->kind == STDCPU_CLIP_TEXT;
    const char *root = text ? "text_model" : "vision_model";
    STDCPU_TRY(text ? load_text(m, w, err) : load_vision(m, w, err));
    if (!(m->layers = calloc(c->layers, sizeof *m->layers)))
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "CLIP: no memory for %zu layers", c->layers);
    for (size_t l = 0; l < c->layers; l++) {
        m->n_layers_loaded = l + 1;
        STDCPU_TRY(load_layer(&m->layers[l], w, root, l, c, m->prec, err));
    }
    char extra[64];
    snprintf(extra, sizeof extra, "%s.encoder.layers.%zu.layer_norm1.weight", root, c->layers);
    if (stdcpu_wsrc_has(w, extra))
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s has more layers than num_hidden_layers = %zu",
                           stdcpu_wsrc_component(w), c->layers);
    const char *proj = text ? "text_projection" : "visual_projection";
    char pname[64];
    snprintf(pname, sizeof pname, "%s.weight", proj);
    if (stdcpu_wsrc_has(w, pname)) {
        size_t n = 0, k = 0;
        STDCPU_TRY(stdcpu_nn_load_linear(&m->proj, w, proj, m->prec, (int64_t)c->hidden, &n, &k, err));
        m->has_proj = 1;
        if (m->proj.bias)
            return stdcpu_fail(err, STDCPU_ERR_FORMAT, "%s has a bias (CLIP projections have none)", proj);
    }
    return STDCPU_OK;
}

stdcpu_status stdcpu_clip_load(stdcpu_clip **out, const stdcpu_wsrc *w, stdcpu_precision p, stdcpu_error *err)
{
    *out = NULL;
    if (!w)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "CLIP: no weight source");
    if (!stdcpu_wsrc_config(w))
        return stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "CLIP: component %s has no config.json",
                           stdcpu_wsrc_component(w));
    stdcpu_clip *m = calloc(1, sizeof *m);
    if (!m)
        return stdcpu_fail(err, STDCPU_ERR_NOMEM, "CLIP: out of memory");
    m->prec = p;
    stdcpu_status st = stdcpu_clip_config_from_json(stdcpu_wsrc_config(w), &m->cfg, err);
    if (!st) {
        /* The weights must be of the kind the config describes. */
        const int text = m->cfg.kind == STDCPU_CLIP_TEXT;
        const char *probe = text ? "text_model.embeddings.token_embedding.weight"
                                 : "vision_model.embeddings.class_embedding";
        if (!stdcpu_wsrc_has(w, probe))
            st = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "%s: config says CLIP %s model but %s is absent",
                             stdcpu_wsrc_component(w), text ? "text" : "vision", probe);
    }
    if (!st)
        st = load_all(m, w, err);
    if (st) {
        stdcpu_fail_prefix(err, "loading CLIP %s: ", stdcpu_wsrc_component(w));
        stdcpu_clip_free(m);
        return st;
    }
    *out = m;
    return STDCPU_OK;
}

void stdcpu_clip_free(stdcpu_clip *m)
{
    if (!m)
        return;
    for (size_t l = 0; l < m->n_layers_loaded; l++)
        free_layer(&m->layers[l]);
    free(m->layers);
    stdcpu_aligned_free(m->pos);
    stdcpu_linear_weight_free(&m->proj);
    stdcpu_aligned_free(m->tok.data);
    stdcpu_aligned_free(m->tok.scales);
    stdcpu_nn_norm_free(&m->final_ln);
    stdcpu_aligned_free(m->class_emb);
    stdcpu_linear_weight_free(&m->patch);
    stdcpu_nn_norm_free(&m->pre_ln);
    stdcpu_nn_norm_free(&m->post_ln);
    stdcpu_arena_release_all(&m->arena);
    free(m);
}

const stdcpu_clip_config *stdcpu_clip_get_config(const stdcpu_clip *m) { return &m->cfg; }
size_t stdcpu_clip_projection_dim(const stdcpu_clip *m) { return m->has_proj ? m->proj.n : 0; }
size_t stdcpu_clip_peak_bytes(const stdcpu_clip *m) { return m->peak > m->arena.peak ? m->peak : m->arena.peak; }

void stdcpu_clip_trim(stdcpu_clip *m)
{
    if (!m)
        return;
    if (m->arena.peak > m->peak)
        m->peak = m->arena.peak;
    stdcpu_arena_release_all(&m->arena);
}

size_t stdcpu_clip_vision_tokens(const stdcpu_clip *m)
{
    return m->cfg.kind == STDCPU_CLIP_VISION ? m->positions : 0;
}

/* ---- activations ------------------------------------------------------------- */

/* The arena holds, for M = B*T rows (every buffer reused by every layer):
 * x [M,H] residual stream, h [M,H] LayerNorm output, q/k/v/a [M,H] attention
 * in/out, mlp [M,I], attention scratch, rows [B,H] x2 (pooled rows and their
 * LayerNorm), and for the vision encoder patches [B*(S/p)^2, C*p*p]. */
enum { BUF_X, BUF_H, BUF_Q, BUF_K, BUF_V, BUF_A, BUF_MLP, BUF_SCRATCH, BUF_ROWS, BUF_ROWS2, BUF_PATCHES, BUF_COUNT };

typedef struct clip_bufs {
    float *p[BUF_COUNT];
    size_t n[BUF_COUNT]; /* floats */
} clip_bufs;

static size_t attn_scratch_floats(const stdcpu_clip *m, int threads)
{
    stdcpu_attention_desc d = {.batch = 1, .heads = m->cfg.heads, .head_dim = m->cfg.hidden / m->cfg.heads};
    return stdcpu_attention_scratch_floats(&d, threads);
}

/* Float counts of every buffer; -1 on overflow. */
static int plan_bufs(const stdcpu_clip *m, size_t B, size_t T, int threads, clip_bufs *b)
{
    const stdcpu_clip_config *c = &m->cfg;
    size_t M, MH, MI, BH;
    memset(b, 0, sizeof *b);
    if (stdcpu_mul_size(B, T, &M) || stdcpu_mul_size(M, c->hidden, &MH) || stdcpu_mul_size(M, c->intermediate, &MI) ||
        stdcpu_mul_size(B, c->hidden, &BH))
        return -1;
    for (int i = BUF_X; i <= BUF_A; i++)
        b->n[i] = MH;
    b->n[BUF_MLP] = MI;
    b->n[BUF_SCRATCH] = attn_scratch_floats(m, threads);
    b->n[BUF_ROWS] = b->n[BUF_ROWS2] = BH;
    if (c->kind == STDCPU_CLIP_VISION) {
        const size_t np = c->image_size / c->patch_size;
        size_t pk;
        if (stdcpu_mul_size(B, np * np, &pk) || stdcpu_mul_size(pk, c->channels * c->patch_size * c->patch_size, &pk))
            return -1;
        b->n[BUF_PATCHES] = pk;
    }
    return 0;
}

size_t stdcpu_clip_arena_bytes(const stdcpu_clip *m, size_t B, size_t T, int threads)
{
    clip_bufs b;
    if (plan_bufs(m, B, T, threads, &b))
        return SIZE_MAX;
    size_t total = 0;
    for (int i = 0; i < BUF_COUNT; i++) {
        size_t bytes;
        if (stdcpu_mul_size(b.n[i] ? b.n[i] : 1, sizeof(float), &bytes) ||
            stdcpu_add_size(total, stdcpu_round_up(bytes, STDCPU_ALIGN), &total) || total > SIZE_MAX / 2)
            return SIZE_MAX;
    }
    return total;
}

/* Sizes the arena for (B, T) (growing it when needed) and carves the buffers. */
static stdcpu_status alloc_bufs(stdcpu_clip *m, size_t B, size_t T, int threads, clip_bufs *b, stdcpu_error *err)
{
    const size_t bytes = stdcpu_clip_arena_bytes(m, B, T, threads);
    if (bytes == SIZE_MAX || plan_bufs(m, B, T, threads, b))
        return stdcpu_fail(err, STDCPU_ERR_LIMIT, "CLIP: batch %zu x %zu tokens is too large", B, T);
    if (!m->arena.base || m->arena.cap < bytes) {
        if (m->arena.peak > m->peak)
            m->peak = m->arena.peak;
        stdcpu_arena_release_all(&m->arena);
        STDCPU_TRY(stdcpu_arena_init(&m->arena, bytes, err));
    }
    stdcpu_arena_reset(&m->arena, 0);
    for (int i = 0; i < BUF_COUNT; i++)
        if (!(b->p[i] = stdcpu_arena_alloc(&m->arena, (b->n[i] ? b->n[i] : 1) * sizeof(float), err)))
            return STDCPU_ERR_NOMEM;
    return STDCPU_OK;
}

/* ---- the encoder --------------------------------------------------------------- */

/* x [B*T, H] += attention and MLP of one layer. */
static stdcpu_status run_layer(const stdcpu_clip *m, const clip_layer *ly, stdcpu_pool *pool, const clip_bufs *b,
                               size_t B, size_t T, int causal, stdcpu_error *err)
{
    const stdcpu_clip_config *c = &m->cfg;
    const size_t M = B * T, H = c->hidden, I = c->intermediate;
    float *x = b->p[BUF_X], *h = b->p[BUF_H], *a = b->p[BUF_A], *mlp = b->p[BUF_MLP];

    STDCPU_TRY(stdcpu_layer_norm(pool, NULL, x, M, H, c->eps, ly->ln1.gamma, ly->ln1.beta, h, err));
    STDCPU_TRY(stdcpu_linear(pool, &ly->q, h, b->p[BUF_Q], M, NULL, STDCPU_ACT_NONE, err));
    STDCPU_TRY(stdcpu_linear(pool, &ly->k, h, b->p[BUF_K], M, NULL, STDCPU_ACT_NONE, err));
    STDCPU_TRY(stdcpu_linear(pool, &ly->v, h, b->p[BUF_V], M, NULL, STDCPU_ACT_NONE, err));
    const size_t d = H / c->heads;
    stdcpu_attention_desc ad = {
        .batch = B,
        .heads = c->heads,
        .head_dim = d,
        .tq = T,
        .tk = T,
        .q = b->p[BUF_Q],
        .k = b->p[BUF_K],
        .v = b->p[BUF_V],
        .o = a,
        .scale = (float)(1.0 / sqrt((double)d)),
        .causal = causal,
        .scratch = b->p[BUF_SCRATCH],
        .scratch_floats = b->n[BUF_SCRATCH],
    };
    STDCPU_TRY(stdcpu_attention(pool, NULL, &ad, err));
    STDCPU_TRY(stdcpu_linear(pool, &ly->out, a, x, M, x, STDCPU_ACT_NONE, err));

    STDCPU_TRY(stdcpu_layer_norm(pool, NULL, x, M, H, c->eps, ly->ln2.gamma, ly->ln2.beta, h, err));
    /* Exact GELU fuses into the GEMM epilogue; the others run separately. */
    const int fused = c->act == STDCPU_ELT_GELU;
    STDCPU_TRY(stdcpu_linear(pool, &ly->fc1, h, mlp, M, NULL, fused ? STDCPU_ACT_GELU : STDCPU_ACT_NONE, err));
    if (!fused)
        STDCPU_TRY(stdcpu_activation(pool, NULL, c->act, mlp, mlp, M * I, err));
    STDCPU_TRY(stdcpu_linear(pool, &ly->fc2, mlp, x, M, x, STDCPU_ACT_NONE, err));
    return STDCPU_OK;
}

/* The hidden-state index an output asks for, in 0..L (or -1 if invalid). */
static long resolve_index(const stdcpu_clip *m, int idx)
{
    const long L = (long)m->cfg.layers;
    const long i = idx >= 0 ? (long)idx : L + 1 + (long)idx;
    return i >= 0 && i <= L ? i : -1;
}

static stdcpu_status check_out(const stdcpu_clip *m, const stdcpu_clip_out *out, long *hidden_idx, size_t *n_run,
                               stdcpu_error *err)
{
    if (!out)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "CLIP: no outputs given");
    *hidden_idx = -1;
    *n_run = 0;
    if (out->hidden) {
        *hidden_idx = resolve_index(m, out->hidden_index);
        if (*hidden_idx < 0)
            return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "CLIP: hidden_index %d is outside -%zu..%zu",
                               out->hidden_index, m->cfg.layers + 1, m->cfg.layers);
        *n_run = (size_t)*hidden_idx;
    }
    if (out->embeds && !m->has_proj)
        return stdcpu_fail(err, STDCPU_ERR_NOT_FOUND, "CLIP: embeds asked for, but the model has no %s",
                           m->cfg.kind == STDCPU_CLIP_TEXT ? "text_projection" : "visual_projection");
    if (out->hidden_states || out->last_hidden_state || out->pooled || out->embeds)
        *n_run = m->cfg.layers;
    return STDCPU_OK;
}

/* Runs the first n_run layers on x, recording the requested hidden states. */
static stdcpu_status run_encoder(const stdcpu_clip *m, stdcpu_pool *pool, const clip_bufs *b, size_t B, size_t T,
                                 int causal, size_t n_run, long hidden_idx, const stdcpu_clip_out *out,
                                 stdcpu_error *err)
{
    const size_t MH = B * T * m->cfg.hidden;
    const float *x = b->p[BUF_X];
    for (size_t l = 0;; l++) {
        if (out->hidden_states)
            memcpy(out->hidden_states + l * MH, x, MH * sizeof(float));
        if (out->hidden && (size_t)hidden_idx == l)
            memcpy(out->hidden, x, MH * sizeof(float));
        if (l == n_run)
            break;
        STDCPU_TRY(run_layer(m, &m->layers[l], pool, b, B, T, causal, err));
    }
    return STDCPU_OK;
}

/* rows [B, H] (sequence b's pooled token) -> pooled = LN(rows) when ln, and
 * embeds = pooled . proj^T. */
static stdcpu_status pool_and_project(const stdcpu_clip *m, stdcpu_pool *pool, const clip_bufs *b, size_t B,
                                      const stdcpu_nn_norm *ln, const stdcpu_clip_out *out, stdcpu_error *err)
{
    const size_t H = m->cfg.hidden;
    const float *rows = b->p[BUF_ROWS];
    float *pooled = out->pooled ? out->pooled : b->p[BUF_ROWS2];
    if (ln)
        STDCPU_TRY(stdcpu_layer_norm(pool, NULL, rows, B, H, m->cfg.eps, ln->gamma, ln->beta, pooled, err));
    else
        memcpy(pooled, rows, B * H * sizeof(float));
    if (out->embeds)
        STDCPU_TRY(stdcpu_linear(pool, &m->proj, pooled, out->embeds, B, NULL, STDCPU_ACT_NONE, err));
    return STDCPU_OK;
}

stdcpu_status stdcpu_clip_text_forward(stdcpu_clip *m, stdcpu_pool *pool, const int64_t *ids, size_t B, size_t T,
                                       const stdcpu_clip_out *out, stdcpu_error *err)
{
    const stdcpu_clip_config *c = &m->cfg;
    if (c->kind != STDCPU_CLIP_TEXT)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "CLIP: text forward on a vision model");
    if (!ids || B == 0 || T == 0 || T > c->max_positions)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "CLIP text: need 1..%zu tokens per sequence and B >= 1 "
                           "(got B=%zu, T=%zu)", c->max_positions, B, T);
    for (size_t i = 0; i < B * T; i++)
        if (ids[i] < 0 || (uint64_t)ids[i] >= c->vocab)
            return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "CLIP text: token id %lld at [%zu, %zu] is outside the "
                               "vocabulary (%zu)", (long long)ids[i], i / T, i % T, c->vocab);
    long hidden_idx;
    size_t n_run;
    STDCPU_TRY(check_out(m, out, &hidden_idx, &n_run, err));
    clip_bufs b;
    STDCPU_TRY(alloc_bufs(m, B, T, stdcpu_pool_threads(pool), &b, err));

    /* x[b, t] = token_embedding[ids[b, t]] + position_embedding[t] */
    const size_t H = c->hidden, M = B * T;
    float *x = b.p[BUF_X];
    for (size_t r = 0; r < M; r++) {
        float *xr = x + r * H;
        const float *pr = m->pos + (r % T) * H;
        table_row(&m->tok, (size_t)ids[r], xr);
        for (size_t j = 0; j < H; j++)
            xr[j] += pr[j];
    }
    STDCPU_TRY(run_encoder(m, pool, &b, B, T, 1, n_run, hidden_idx, out, err));
    if (!out->last_hidden_state && !out->pooled && !out->embeds)
        return STDCPU_OK;

    float *last = out->last_hidden_state ? out->last_hidden_state : b.p[BUF_H];
    STDCPU_TRY(stdcpu_layer_norm(pool, NULL, x, M, H, c->eps, m->final_ln.gamma, m->final_ln.beta, last, err));
    /* Pooled token: the first position of the largest id (the first EOS for
     * real ids: transformers' rule for configs with eos_token_id == 2). */
    for (size_t s = 0; s < B; s++) {
        size_t best = 0;
        for (size_t t = 1; t < T; t++)
            if (ids[s * T + t] > ids[s * T + best])
                best = t;
        memcpy(b.p[BUF_ROWS] + s * H, last + (s * T + best) * H, H * sizeof(float));
    }
    return pool_and_project(m, pool, &b, B, NULL, out, err);
}

stdcpu_status stdcpu_clip_vision_forward(stdcpu_clip *m, stdcpu_pool *pool, const float *pixels, size_t B,
                                         const stdcpu_clip_out *out, stdcpu_error *err)
{
    const stdcpu_clip_config *c = &m->cfg;
    if (c->kind != STDCPU_CLIP_VISION)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "CLIP: vision forward on a text model");
    if (!pixels || B == 0)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "CLIP vision: no pixels or B == 0");
    long hidden_idx;
    size_t n_run;
    STDCPU_TRY(check_out(m, out, &hidden_idx, &n_run, err));
    const size_t T = m->positions, H = c->hidden, M = B * T;
    clip_bufs b;
    STDCPU_TRY(alloc_bufs(m, B, T, stdcpu_pool_threads(pool), &b, err));

    /* Patches [B*np*np, C*p*p]: row (b, py, px), column (c, ky, kx), straight
     * from the NCHW pixels; then x[b, 1 + patch] = patches . W^T + pos[1 + patch]
     * and x[b, 0] = class_embedding + pos[0] (HF adds the position rows after
     * concatenating, as here). */
    const size_t S = c->image_size, p = c->patch_size, np = S / p, C = c->channels, K = C * p * p;
    float *patches = b.p[BUF_PATCHES];
    for (size_t s = 0; s < B; s++)
        for (size_t py = 0; py < np; py++)
            for (size_t px = 0; px < np; px++) {
                float *row = patches + ((s * np + py) * np + px) * K;
                for (size_t ch = 0; ch < C; ch++)
                    for (size_t ky = 0; ky < p; ky++)
                        memcpy(row + (ch * p + ky) * p, pixels + ((s * C + ch) * S + py * p + ky) * S + px * p,
                               p * sizeof(float));
            }
    /* One GEMM for the whole batch into q's buffer ([B*np*np, H] fits in
     * [B*T, H]), then scattered between the class tokens. */
    float *x = b.p[BUF_X], *pe = b.p[BUF_Q];
    const size_t NP = np * np;
    STDCPU_TRY(stdcpu_linear(pool, &m->patch, patches, pe, B * NP, NULL, STDCPU_ACT_NONE, err));
    for (size_t s = 0; s < B; s++)
        for (size_t t = 0; t < T; t++) {
            float *xr = x + (s * T + t) * H;
            const float *src = t ? pe + (s * NP + t - 1) * H : m->class_emb, *pr = m->pos + t * H;
            for (size_t j = 0; j < H; j++)
                xr[j] = src[j] + pr[j];
        }
    STDCPU_TRY(stdcpu_layer_norm(pool, NULL, x, M, H, c->eps, m->pre_ln.gamma, m->pre_ln.beta, x, err));
    STDCPU_TRY(run_encoder(m, pool, &b, B, T, 0, n_run, hidden_idx, out, err));
    if (out->last_hidden_state)
        memcpy(out->last_hidden_state, x, M * H * sizeof(float));
    if (!out->pooled && !out->embeds)
        return STDCPU_OK;
    for (size_t s = 0; s < B; s++)
        memcpy(b.p[BUF_ROWS] + s * H, x + s * T * H, H * sizeof(float));
    return pool_and_project(m, pool, &b, B, &m->post_ln, out, err);
}

/* ---- image preprocessing ------------------------------------------------------- */

stdcpu_status stdcpu_clip_preprocess_image(const stdcpu_clip *m, const stdcpu_image *img, float *pixels,
                                           stdcpu_error *err)
{
    /* transformers OPENAI_CLIP_MEAN / OPENAI_CLIP_STD */
    static const double mean[3] = {0.48145466, 0.4578275, 0.40821073};
    static const double std[3] = {0.26862954, 0.26130258, 0.27577711};
    const stdcpu_clip_config *c = &m->cfg;
    if (c->kind != STDCPU_CLIP_VISION || c->channels != 3)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "CLIP preprocessing needs an RGB vision encoder");
    if (!img || !img->rgb || img->width <= 0 || img->height <= 0 || !pixels)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "CLIP preprocessing: empty image");
    const int S = (int)c->image_size;
    int rw, rh;
    stdcpu_size_for_shortest_side(img->width, img->height, S, &rw, &rh);
    stdcpu_image resized = {0}, crop = {0};
    stdcpu_status st = STDCPU_OK;
    const stdcpu_image *src = img;
    if (rw != img->width || rh != img->height) {
        if ((st = stdcpu_image_resize(img, rw, rh, STDCPU_RESIZE_PIL_BICUBIC, &resized, err)))
            return st;
        src = &resized;
    }
    if ((st = stdcpu_image_center_crop(src, S, S, &crop, err)))
        goto done;
    /* transformers rescales in float64 then casts to float32, and normalises in
     * float32 with mean / std cast to float32. */
    for (int ch = 0; ch < 3; ch++) {
        const float mf = (float)mean[ch], sf = (float)std[ch];
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                const float v = (float)((double)crop.rgb[((size_t)y * (size_t)S + (size_t)x) * 3 + (size_t)ch] *
                                        (1.0 / 255.0));
                pixels[((size_t)ch * (size_t)S + (size_t)y) * (size_t)S + (size_t)x] = (v - mf) / sf;
            }
    }
done:
    stdcpu_image_free(&crop);
    stdcpu_image_free(&resized);
    return st;
}
