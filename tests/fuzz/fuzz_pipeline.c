/*
 * fuzz_pipeline.c — libFuzzer target for pipeline files (runtime/src/pipeline.c).
 *
 * The bytes are written to a file and loaded with pipeline_load(), the same
 * call `myelin run` and `myelin validate` make: YAML parsing, ${VAR}
 * expansion, stage keys, plugin lookup, every real plugin's param table
 * (types, ranges, lists), inputs, kinds, cycles and each plugin's validate().
 * A file that fails to load must say why (at least one diagnostic); nothing
 * may crash or leak. The build's plugin folder is searched
 * (MYELIN_PLUGIN_PATH, set here when unset), so `plugin: dataset` finds the
 * real dataset plugin. Every plugin is dlopen'ed once up front and never
 * unloaded: libFuzzer keeps pointers to the coverage counters of every
 * instrumented DSO and must not see one unmapped.
 * Built with -DMYELIN_FUZZ=ON and clang (tests/fuzz/CMakeLists.txt).
 */
#include <dirent.h>
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fuzz_env {
  char file[256];
} fuzz_env;

static void pin_plugins(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char path[4096];
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 4 || strcmp(e->d_name + n - 3, ".so") != 0) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    (void)dlopen(path, RTLD_NOW | RTLD_NODELETE); /* kept for the whole process */
  }
  closedir(d);
}

static const fuzz_env *env_init(void) {
  static fuzz_env env; /* process-wide: one scratch file for every input */
  if (env.file[0]) return &env;
  setenv("MYELIN_PLUGIN_PATH", FUZZ_PLUGIN_DIR, 0);
  pin_plugins(FUZZ_PLUGIN_DIR);
  const char *tmp = getenv("TMPDIR");
  snprintf(env.file, sizeof env.file, "%s/myelin_fuzz_pipeline_%ld.yaml", tmp && *tmp ? tmp : "/tmp",
           (long)getpid());
  return &env;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const fuzz_env *env = env_init();
  FILE *fp = fopen(env->file, "wb");
  if (!fp) return 0;
  if (size) fwrite(data, 1, size, fp);
  fclose(fp);
  myelin_diag d = {0};
  pipeline *p = pipeline_load(env->file, NULL, 0, &d);
  if (!p && d.n == 0) {
    fprintf(stderr, "fuzz_pipeline: pipeline_load failed without a diagnostic\n");
    __builtin_trap();
  }
  if (p) {
    size_t order[64];
    if (p->n <= 64) (void)pipeline_topo(p, order);
    pipeline_free(p);
  }
  diag_free(&d);
  unlink(env->file);
  return 0;
}
