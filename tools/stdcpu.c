/* stdcpu: stylize a photo with a few-step diffusion student on the CPU.
 *   stdcpu [options] INPUT OUTPUT
 * Exit codes: 0 ok, 1 failure while running, 2 bad usage or option value,
 * 3 no model file, 4 unreadable input, 5 unwritable output, 6 the model
 * lacks a feature the options ask for. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/error.h"
#include "cli_progress.h"
#include "core/threadpool.h"
#include "io/file.h"
#include "io/image.h"
#include "pipeline/stylize.h"
#include "simd/cpu.h"
#include "stdcpu.h"

enum { EXIT_OK = 0, EXIT_RUN = 1, EXIT_USAGE = 2, EXIT_NO_MODEL = 3, EXIT_INPUT = 4, EXIT_OUTPUT = 5,
       EXIT_FEATURE = 6 };

static const char *prog = "stdcpu";

static void print_version(void)
{
    printf("stdcpu %s\n", stdcpu_version_string());
    printf("cpu isa:");
    for (int i = 0; i < STDCPU_ISA_COUNT; i++)
        if (stdcpu_cpu_isa_mask() & (1u << i))
            printf(" %s", stdcpu_isa_name((stdcpu_isa)i));
    printf("\nbuilt isa:");
    for (int i = 0; i < STDCPU_ISA_COUNT; i++)
        if (stdcpu_isa_available((stdcpu_isa)i))
            printf(" %s", stdcpu_isa_name((stdcpu_isa)i));
    printf("\nactive isa: %s\n", stdcpu_isa_name(stdcpu_isa_active()));
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: stdcpu [options] INPUT OUTPUT\n"
            "Stylizes the photo INPUT (PNG, JPEG, WebP) into OUTPUT (.png or .webp) with a few-step\n"
            "diffusion student (Single Trajectory Distillation) on the CPU.\n"
            "\n"
            "Model:\n"
            "  -m, --model FILE      model file (.stdm); default $STDCPU_MODEL, then\n"
            "                        $XDG_DATA_HOME/stdcpu/default.stdm, ~/.local/share/stdcpu/default.stdm\n"
            "      --precision P     int8 (default) or f32\n"
            "Style:\n"
            "  -p, --style TEXT      style prompt, e.g. \"Stick figure abstract nostalgic style.\"\n"
            "  -n, --negative TEXT   negative prompt (default: the recipe's)\n"
            "      --style-image F   style from an example picture (IP-Adapter; the model must bundle one)\n"
            "      --style-scale X   strength of the style image (default 1)\n"
            "      --style-blocks B  instantstyle (default: up_blocks.0.attentions.1 only) or all\n"
            "Sampling:\n"
            "      --strength X      how much of the photo is re-imagined, 0..1 (SDXL default 0.75)\n"
            "      --steps N         UNet evaluations (SDXL default 8; the schedule length is derived)\n"
            "      --cfg X           guidance scale (SDXL default 6; 1 = no guidance, faster)\n"
            "      --seed N          random seed (default: a new one, printed)\n"
            "Size and speed:\n"
            "      --decoder D       vae (default, full quality) or tiny (TAESD: much faster, bundled with --taesd)\n"
            "      --size N          working long side, a multiple of 64 (default 768)\n"
            "      --width W --height H  explicit working size (multiples of 64)\n"
            "      --threads N       threads (default $STDCPU_THREADS or all CPUs)\n"
            "Output:\n"
            "  -q, --quiet           no progress display\n"
            "  -v, --verbose         per-phase times and peak memory\n"
            "      --help            this text\n"
            "      --version         version and CPU features\n"
            "\n"
            "Exit codes: 0 ok, 1 failed while running, 2 bad usage, 3 no model, 4 unreadable input,\n"
            "5 unwritable output, 6 the model lacks a requested feature.\n"
            "Environment: STDCPU_MODEL, STDCPU_THREADS, STDCPU_ISA (scalar|avx2|avx512vnni|neon|neondot).\n");
}

static int die(int code, const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, a, b);
    fputc('\n', stderr);
    return code;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

static int parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int is_file(const char *p)
{
    struct stat st;
    return p && stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* -m, then $STDCPU_MODEL, then the XDG data folder, then ~/.local/share. */
static const char *find_model(const char *opt, char *buf, size_t n, char *looked, size_t ln)
{
    looked[0] = '\0';
    if (opt)
        return opt;
    const char *env = getenv("STDCPU_MODEL");
    if (env && *env)
        return env;
    const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
    if (xdg && *xdg) {
        snprintf(buf, n, "%s/stdcpu/default.stdm", xdg);
        if (is_file(buf))
            return buf;
        snprintf(looked, ln, "%s", buf);
    }
    if (home && *home) {
        snprintf(buf, n, "%s/.local/share/stdcpu/default.stdm", home);
        if (is_file(buf))
            return buf;
        size_t L = strlen(looked);
        snprintf(looked + L, ln - L, "%s%s", L ? ", " : "", buf);
    }
    return NULL;
}

/* The output's folder must exist and be writable before hours of compute. */
static int output_writable(const char *path, char *why, size_t n)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0';
    else if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(why, n, "folder %s does not exist", dir);
        return 0;
    }
    if (access(dir, W_OK) != 0) {
        snprintf(why, n, "folder %s is not writable", dir);
        return 0;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(why, n, "%s is a folder", path);
        return 0;
    }
    return 1;
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static uint64_t fresh_seed(void)
{
    uint64_t s = 0;
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd >= 0) {
        if (read(fd, &s, sizeof s) != (ssize_t)sizeof s)
            s = 0;
        close(fd);
    }
    if (!s)
        s = (uint64_t)time(NULL) * 6364136223846793005ull + (uint64_t)getpid();
    return s & ((1ull << 53) - 1); /* printable and exact in JSON/doubles */
}

typedef struct cli_opts {
    const char *model, *prompt, *negative, *style_image, *style_blocks, *decoder, *input, *output;
    double strength, cfg, style_scale;
    long steps, threads, size, width, height;
    uint64_t seed;
    int seed_set, quiet, verbose, f32;
    int strength_set, cfg_set, steps_set, scale_set;
} cli_opts;

/* Returns -1 to continue, else the exit code. */
static int parse_args(int argc, char **argv, cli_opts *o)
{
    memset(o, 0, sizeof *o);
    int npos = 0;
    const char *pos[2] = {NULL, NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV()                                                          \
    do {                                                                 \
        if (!v)                                                          \
            return die(EXIT_USAGE, "option %s needs a value%s", a, "");  \
        i++;                                                             \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return EXIT_OK;
        } else if (!strcmp(a, "--version")) {
            print_version();
            return EXIT_OK;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            NEEDV();
            o->model = v;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--style")) {
            NEEDV();
            o->prompt = v;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--negative")) {
            NEEDV();
            o->negative = v;
        } else if (!strcmp(a, "--style-image")) {
            NEEDV();
            o->style_image = v;
        } else if (!strcmp(a, "--style-blocks")) {
            NEEDV();
            if (strcmp(v, "instantstyle") && strcmp(v, "all"))
                return die(EXIT_USAGE, "--style-blocks must be instantstyle or all, not \"%s\"%s", v, "");
            o->style_blocks = v;
        } else if (!strcmp(a, "--style-scale")) {
            NEEDV();
            if (parse_double(v, 0.0, 10.0, &o->style_scale))
                return die(EXIT_USAGE, "--style-scale must be a number from 0 to 10, not \"%s\"%s", v, "");
            o->scale_set = 1;
        } else if (!strcmp(a, "--strength")) {
            NEEDV();
            if (parse_double(v, 1e-6, 1.0, &o->strength))
                return die(EXIT_USAGE, "--strength must be a number in (0, 1], not \"%s\"%s", v, "");
            o->strength_set = 1;
        } else if (!strcmp(a, "--cfg")) {
            NEEDV();
            if (parse_double(v, 0.0, 50.0, &o->cfg))
                return die(EXIT_USAGE, "--cfg must be a number from 0 to 50, not \"%s\"%s", v, "");
            o->cfg_set = 1;
        } else if (!strcmp(a, "--steps")) {
            NEEDV();
            if (parse_int(v, 1, 200, &o->steps))
                return die(EXIT_USAGE, "--steps must be a whole number from 1 to 200, not \"%s\"%s", v, "");
            o->steps_set = 1;
        } else if (!strcmp(a, "--seed")) {
            NEEDV();
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-')
                return die(EXIT_USAGE, "--seed must be a non-negative whole number, not \"%s\"%s", v, "");
            o->seed = s;
            o->seed_set = 1;
        } else if (!strcmp(a, "--size")) {
            NEEDV();
            if (parse_int(v, 64, 4096, &o->size) || o->size % 64)
                return die(EXIT_USAGE, "--size must be a multiple of 64 from 64 to 4096, not \"%s\"%s", v, "");
        } else if (!strcmp(a, "--width") || !strcmp(a, "--height")) {
            NEEDV();
            long x;
            if (parse_int(v, 64, 4096, &x) || x % 64)
                return die(EXIT_USAGE, "%s must be a multiple of 64 from 64 to 4096", a, "");
            *(a[2] == 'w' ? &o->width : &o->height) = x;
        } else if (!strcmp(a, "--threads")) {
            NEEDV();
            if (parse_int(v, 1, 512, &o->threads))
                return die(EXIT_USAGE, "--threads must be a whole number from 1 to 512, not \"%s\"%s", v, "");
        } else if (!strcmp(a, "--decoder")) {
            NEEDV();
            if (strcmp(v, "vae") && strcmp(v, "tiny"))
                return die(EXIT_USAGE, "--decoder must be vae or tiny, not \"%s\"%s", v, "");
            o->decoder = v;
        } else if (!strcmp(a, "--precision")) {
            NEEDV();
            if (strcmp(v, "int8") && strcmp(v, "f32"))
                return die(EXIT_USAGE, "--precision must be int8 or f32, not \"%s\"%s", v, "");
            o->f32 = !strcmp(v, "f32");
        } else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = 1;
        } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
            o->verbose = 1;
        } else if (a[0] == '-' && a[1] != '\0') {
            return die(EXIT_USAGE, "unknown option %s (see --help)%s", a, "");
        } else {
            if (npos == 2)
                return die(EXIT_USAGE, "too many arguments: expected INPUT OUTPUT, got also \"%s\"%s", a, "");
            pos[npos++] = a;
        }
#undef NEEDV
    }
    if (npos != 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if ((o->width != 0) != (o->height != 0))
        return die(EXIT_USAGE, "--width and --height go together%s%s", "", "");
    o->input = pos[0];
    o->output = pos[1];
    return -1;
}

/* A1111-style settings line, stored in the PNG's "parameters" chunk. */
static void settings_text(char *buf, size_t n, const stdcpu_stylize_opts *so, const stdcpu_stylize_report *rep,
                          const char *model, const char *style_image)
{
    snprintf(buf, n,
             "%s\nNegative prompt: %s\nSteps: %d, Scheduler: %s, Scheduler steps: %d, Strength: %g, CFG scale: %g, "
             "Seed: %" PRIu64 ", Size: %dx%d, Style image: %s, Style scale: %g, Model: %s, Engine: stdcpu %s",
             so->prompt ? so->prompt : "", so->negative ? so->negative : "", so->steps,
             stdcpu_sched_kind_name(so->scheduler), rep->scheduler_steps, so->strength, so->cfg, so->seed,
             rep->work_width, rep->work_height, style_image ? stdcpu_path_basename(style_image) : "none",
             so->style_scale, stdcpu_path_basename(model), stdcpu_version_string());
}

int main(int argc, char **argv)
{
    const char *isa_env = getenv("STDCPU_ISA");
    stdcpu_isa isa;
    if (isa_env && *isa_env && stdcpu_isa_parse(isa_env, &isa) != 0)
        return die(EXIT_USAGE, "STDCPU_ISA=%s is not one of scalar, avx2, avx512vnni, neon, neondot%s", isa_env, "");
    cli_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0)
        return rc;

    /* Cheap checks first: nothing long runs before we know it can finish. */
    char mbuf[PATH_MAX], looked[2 * PATH_MAX + 8], why[PATH_MAX + 64];
    const char *model_path = find_model(o.model, mbuf, sizeof mbuf, looked, sizeof looked);
    if (!model_path) {
        fprintf(stderr, "%s: no model file found (looked in %s). Get one with `make model` (runs "
                "tools/stdcpu-fetch-model), or pass -m FILE / set STDCPU_MODEL\n", prog,
                looked[0] ? looked : "no default location: HOME is not set");
        return EXIT_NO_MODEL;
    }
    if (!is_file(model_path))
        return die(EXIT_NO_MODEL, "model file %s does not exist or is not a file (get one with `make model`)%s",
                   model_path, "");
    const stdcpu_image_format ofmt = stdcpu_image_format_for_path(o.output);
    if (ofmt != STDCPU_FORMAT_PNG && ofmt != STDCPU_FORMAT_WEBP)
        return die(EXIT_USAGE, "cannot tell the output format of %s: name it .png or .webp%s", o.output, "");
    if (!output_writable(o.output, why, sizeof why))
        return die(EXIT_OUTPUT, "cannot write %s: %s", o.output, why);
    if (same_file(o.input, o.output))
        return die(EXIT_USAGE, "the output %s is the input: the input is never overwritten%s", o.output, "");

    stdcpu_error err;
    stdcpu_image in = {0}, style = {0}, out = {0};
    if (stdcpu_image_read(o.input, NULL, &in, &err) != STDCPU_OK)
        return die(EXIT_INPUT, "%s%s", err.msg, "");
    if (o.style_image && stdcpu_image_read(o.style_image, NULL, &style, &err) != STDCPU_OK) {
        stdcpu_image_free(&in);
        return die(EXIT_INPUT, "%s%s", err.msg, "");
    }

    const double t_load = cli_progress_clock();
    stdcpu_model *model;
    stdcpu_status st = stdcpu_model_open(&model, model_path, o.f32 ? STDCPU_PREC_F32 : STDCPU_PREC_INT8, &err);
    if (st != STDCPU_OK) {
        stdcpu_image_free(&in);
        stdcpu_image_free(&style);
        return die(st == STDCPU_ERR_MISMATCH ? EXIT_FEATURE : EXIT_NO_MODEL, "%s%s", err.msg, "");
    }
    const double load_s = cli_progress_clock() - t_load;
    stdcpu_stylize_opts so;
    stdcpu_stylize_defaults(model, &so);
    if (o.prompt)
        so.prompt = o.prompt;
    if (o.negative)
        so.negative = o.negative;
    if (o.strength_set)
        so.strength = o.strength;
    if (o.cfg_set)
        so.cfg = o.cfg;
    if (o.steps_set)
        so.steps = (int)o.steps;
    if (o.scale_set)
        so.style_scale = o.style_scale;
    if (o.style_blocks)
        so.style_blocks = o.style_blocks;
    if (o.size)
        so.long_side = (int)o.size;
    so.work_width = (int)o.width;
    so.work_height = (int)o.height;
    so.style_image = o.style_image ? &style : NULL;
    so.seed = o.seed_set ? o.seed : fresh_seed();
    cli_progress prog_bar;
    cli_progress_init(&prog_bar, stderr, o.quiet, -1);
    so.progress = cli_progress_update;
    so.progress_user = &prog_bar;
    so.tiny_decoder = o.decoder && !strcmp(o.decoder, "tiny");

    stdcpu_pool *pool = NULL;
    if (st == STDCPU_OK)
        st = stdcpu_pool_create(&pool, (int)o.threads, &err);
    stdcpu_stylize_report rep;
    memset(&rep, 0, sizeof rep);
    if (st == STDCPU_OK) {
        if (!o.quiet)
            fprintf(stderr, "%s: seed %" PRIu64 "\n", prog, so.seed);
        st = stdcpu_stylize(model, pool, &in, &so, &out, &rep, &err);
        cli_progress_finish(&prog_bar);
    }
    int code = EXIT_OK;
    if (st != STDCPU_OK) {
        code = st == STDCPU_ERR_MISMATCH ? EXIT_FEATURE : st == STDCPU_ERR_INVALID_ARG ? EXIT_USAGE : EXIT_RUN;
        fprintf(stderr, "%s: %s\n", prog, err.msg);
    } else {
        char params[4096];
        settings_text(params, sizeof params, &so, &rep, model_path, o.style_image);
        stdcpu_write_opts wo;
        memset(&wo, 0, sizeof wo);
        wo.parameters = params;
        const double t_w = cli_progress_clock();
        if (stdcpu_image_write(o.output, &out, &wo, &err) != STDCPU_OK) {
            fprintf(stderr, "%s: %s\n", prog, err.msg);
            code = EXIT_OUTPUT;
        } else if (o.verbose) {
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            fprintf(stderr,
                    "%s: load %.2fs, prepare %.2fs, text %.2fs, encode %.2fs, unet %.2fs (%d evals), decode %.2fs, "
                    "write %.2fs; working size %dx%d; peak RSS %.0f MiB; isa %s; threads %d\n",
                    prog, load_s, rep.seconds_prepare, rep.seconds_text, rep.seconds_encode, rep.seconds_unet,
                    rep.unet_evals, rep.seconds_decode, cli_progress_clock() - t_w, rep.work_width,
                    rep.work_height, ru.ru_maxrss / 1024.0, stdcpu_isa_name(stdcpu_isa_active()),
                    stdcpu_pool_threads(pool));
        }
    }
    stdcpu_pool_destroy(pool);
    stdcpu_model_close(model);
    stdcpu_image_free(&in);
    stdcpu_image_free(&style);
    stdcpu_image_free(&out);
    return code;
}
