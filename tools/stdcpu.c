/* stdcpu: stylize a photo with a few-step diffusion student on the CPU. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simd/cpu.h"
#include "stdcpu.h"

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
    fprintf(f, "usage: stdcpu [options] INPUT OUTPUT\n"
               "  --version   print version and CPU features\n"
               "  --help      this text\n");
}

int main(int argc, char **argv)
{
    const char *isa_env = getenv("STDCPU_ISA");
    stdcpu_isa isa;
    if (isa_env && *isa_env && stdcpu_isa_parse(isa_env, &isa) != 0) {
        fprintf(stderr, "stdcpu: STDCPU_ISA=%s is not one of scalar, avx2, avx512vnni, neon, neondot\n", isa_env);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--version")) {
            print_version();
            return 0;
        }
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
    }
    usage(stderr);
    return 2;
}
