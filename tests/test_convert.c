/* Conversion: parameter enumeration from configs against the golden tiny
 * models, single-file name mapping, and the convert tool end to end. */
#include <math.h>
#include <stdint.h>

#include "base/error.h"
#include "base/mem.h"
#include "core/json.h"
#include "core/names.h"
#include "core/safetensors.h"
#include "testutil.h"

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

int main(void)
{
    Suite *s = suite_create("convert");
    TCase *tc = tcase_create("convert");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_enumeration_matches_golden_models);
    suite_add_tcase(s, tc);
    return stdcpu_test_run(s);
}
