#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

const char *stdcpu_test_shared(const char *rel)
{
    static char buf[4096];
    const char *root = getenv("STDCPU_SHARED");
    if (!root || !*root)
        return NULL;
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    struct stat st;
    return stat(buf, &st) == 0 ? buf : NULL;
}

static char tmpdir[4096];

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char sub[4096];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
        closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static pid_t tmpdir_owner;

static void cleanup_tmpdir(void)
{
    /* Check forks a child per test: only the process that made it removes it. */
    if (tmpdir[0] && getpid() == tmpdir_owner)
        rm_tree(tmpdir);
}

const char *stdcpu_test_tmpdir(void)
{
    if (!tmpdir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir, sizeof tmpdir, "%s/stdcpu-test-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(tmpdir)) {
            perror("mkdtemp");
            abort();
        }
        tmpdir_owner = getpid();
        atexit(cleanup_tmpdir);
    }
    return tmpdir;
}

int stdcpu_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}

double stdcpu_test_rel_l2(const float *got, const float *want, size_t n)
{
    double e = 0.0, w = 0.0;
    for (size_t i = 0; i < n; i++) {
        e += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        w += (double)want[i] * want[i];
    }
    return w > 0.0 ? sqrt(e / w) : sqrt(e);
}
