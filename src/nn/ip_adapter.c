/* IP-Adapter image projection (golden README 3.7). */
#include "config.h"

#include "nn/ip_adapter.h"

#include <string.h>

#include "base/error.h"
#include "core/ops_gemm.h"
#include "core/ops_nn.h"

stdcpu_status stdcpu_ip_image_proj_load(stdcpu_ip_image_proj *ip, const stdcpu_wsrc *w, stdcpu_precision p,
                                        size_t expect_cross_dim, size_t expect_embed_dim, stdcpu_error *err)
{
    memset(ip, 0, sizeof *ip);
    ip->eps = 1e-5f;
    stdcpu_wview nv;
    STDCPU_TRY(stdcpu_wsrc_get(w, "image_proj.norm.weight", &nv, err));
    if (nv.ndim != 1 || nv.numel <= 0)
        return stdcpu_fail(err, STDCPU_ERR_FORMAT, "image_proj.norm.weight is not a vector");
    const size_t X = (size_t)nv.numel;
    if (expect_cross_dim && X != expect_cross_dim)
        return stdcpu_fail(err, STDCPU_ERR_MISMATCH, "IP-Adapter image_proj.norm has %zu channels, the UNet's "
                           "cross_attention_dim is %zu", X, expect_cross_dim);
    size_t n = 0, k = 0;
    STDCPU_TRY(stdcpu_nn_load_linear(&ip->proj, w, "image_proj.proj", p,
                                     expect_embed_dim ? (int64_t)expect_embed_dim : -1, &n, &k, err));
    stdcpu_status st = STDCPU_OK;
    if (n == 0 || n % X)
        st = stdcpu_fail(err, STDCPU_ERR_MISMATCH, "IP-Adapter image_proj.proj has %zu outputs, not a multiple "
                         "of the %zu norm channels", n, X);
    else if (!ip->proj.bias)
        st = stdcpu_fail(err, STDCPU_ERR_FORMAT, "IP-Adapter image_proj.proj has no bias");
    else
        st = stdcpu_nn_load_norm(&ip->norm, w, "image_proj.norm", (int64_t)X, err);
    if (st) {
        stdcpu_ip_image_proj_free(ip);
        return st;
    }
    ip->tokens = n / X;
    ip->cross_dim = X;
    ip->embed_dim = k;
    return STDCPU_OK;
}

stdcpu_status stdcpu_ip_image_proj_forward(const stdcpu_ip_image_proj *ip, stdcpu_pool *pool,
                                           const float *image_embeds, size_t N, float *tokens, stdcpu_error *err)
{
    if (!ip || !ip->cross_dim || !image_embeds || !tokens || N == 0)
        return stdcpu_fail(err, STDCPU_ERR_INVALID_ARG, "IP-Adapter image projection: bad arguments");
    /* [N, tokens*X] is the same memory as [N*tokens, X]: one LayerNorm per token. */
    STDCPU_TRY(stdcpu_linear(pool, &ip->proj, image_embeds, tokens, N, NULL, STDCPU_ACT_NONE, err));
    return stdcpu_layer_norm(pool, NULL, tokens, N * ip->tokens, ip->cross_dim, ip->eps, ip->norm.gamma,
                             ip->norm.beta, tokens, err);
}

void stdcpu_ip_image_proj_free(stdcpu_ip_image_proj *ip)
{
    if (!ip)
        return;
    stdcpu_linear_weight_free(&ip->proj);
    stdcpu_nn_norm_free(&ip->norm);
    memset(ip, 0, sizeof *ip);
}
