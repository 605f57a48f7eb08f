/* Single-file checkpoints (SD1.x LDM / SDXL SGM layouts) -> canonical names. */
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "convert.h"

stdcpu_status convert_single_file(convert_job *job, const char *ckpt_path, const char *config_dir,
                                  stdcpu_stdm_writer *w, stdcpu_error *err)
{
    (void)job;
    (void)config_dir;
    (void)w;
    return stdcpu_fail(err, STDCPU_ERR_UNSUPPORTED, "%s: single-file checkpoints are not supported yet", ckpt_path);
}
