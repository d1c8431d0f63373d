/*
 * cli.c — the `myelin` command.
 *
 *   myelin run FILE [--set ID.PARAM=VALUE]... [--stats] [--quiet] [--check-messages]
 *   myelin validate FILE [--set ...]
 *   myelin plugins
 *   myelin inspect PLUGIN [--json]
 *   myelin cat FILE.mpk [--json]
 *   myelin new-plugin NAME [--dir D]
 *
 * Exit codes (DESIGN.md section 6): 0 success; 1 runtime error; 2 invalid
 * command line or pipeline file; 130 interrupted after a clean drain.
 * Signals are taken by a dedicated sigwait thread (blocked everywhere
 * else), so the stop request runs in ordinary thread context.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fault.h"
#include "internal.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: myelin run FILE [--set ID.PARAM=VALUE]... [--stats] [--quiet] [--check-messages]\n"
          "       myelin validate FILE [--set ID.PARAM=VALUE]...\n"
          "       myelin plugins\n"
          "       myelin inspect PLUGIN [--json]\n"
          "       myelin cat FILE.mpk [--json]\n"
          "       myelin new-plugin NAME [--dir DIR]\n"
          "       myelin --version\n");
}

/* ---- run / validate ------------------------------------------------------ */
static int parse_set(const char *arg, set_override *s) {
  const char *eq = strchr(arg, '=');
  const char *dot = strchr(arg, '.');
  if (!eq || !dot || dot > eq || dot == arg || dot + 1 == eq) return -1;
  s->stage = strndup(arg, (size_t)(dot - arg));
  s->param = strndup(dot + 1, (size_t)(eq - dot - 1));
  s->value = eq + 1;
  s->arg = arg;
  return 0;
}

static void *signal_thread(void *arg) {
  sigset_t *set = arg;
  for (int count = 0;; count++) {
    int sig;
    if (sigwait(set, &sig)) continue;
    if (count == 0)
      fprintf(stderr, "\nmyelin: %s: stopping sources and draining (again to abort)\n",
              sig == SIGINT ? "interrupt" : "terminate");
    run_request_stop();
  }
  return NULL;
}

static int cmd_run(int argc, char **argv, int validate_only) {
  const char *file = NULL;
  set_override *sets = calloc((size_t)argc, sizeof *sets);
  size_t n_sets = 0;
  run_opts o = {0};
  int rc = 2;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--set") && i + 1 < argc) {
      if (parse_set(argv[++i], &sets[n_sets])) {
        fprintf(stderr, "myelin: --set '%s': expected ID.PARAM=VALUE\n", argv[i]);
        goto out;
      }
      n_sets++;
    } else if (!strncmp(a, "--set=", 6)) {
      if (parse_set(a + 6, &sets[n_sets])) {
        fprintf(stderr, "myelin: --set '%s': expected ID.PARAM=VALUE\n", a + 6);
        goto out;
      }
      n_sets++;
    } else if (!validate_only && !strcmp(a, "--stats")) o.stats = 1;
    else if (!validate_only && !strcmp(a, "--quiet")) o.quiet = 1;
    else if (!validate_only && !strcmp(a, "--check-messages")) o.check_messages = 1;
    else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "myelin: unknown option '%s'\n", a);
      usage(stderr);
      goto out;
    } else if (!file) file = a;
    else {
      fprintf(stderr, "myelin: unexpected argument '%s'\n", a);
      goto out;
    }
  }
  if (!file) {
    usage(stderr);
    goto out;
  }
  myelin_diag d = {0};
  pipeline *p = pipeline_load(file, sets, n_sets, &d);
  if (!p) {
    diag_print(&d, stderr);
    fprintf(stderr, "%zu error%s\n", d.n, d.n == 1 ? "" : "s");
    if (diag_out_of_memory(&d)) rc = 1; /* not the file's fault: a runtime failure */
    diag_free(&d);
    goto out;
  }
  diag_free(&d);
  if (validate_only) {
    printf("%s: ok (%zu stages)\n", file, p->n);
    pipeline_free(p);
    rc = 0;
    goto out;
  }
  o.progress = !o.quiet && isatty(2);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  pthread_t sig_t;
  pthread_create(&sig_t, NULL, signal_thread, &set);
  pthread_detach(sig_t);
  rc = run_pipeline(p, &o);
  pipeline_free(p);
out:
  for (size_t i = 0; i < n_sets; i++) {
    free((char *)sets[i].stage);
    free((char *)sets[i].param);
  }
  free(sets);
  return rc;
}

/* ---- plugins ------------------------------------------------------------- */
static int cmd_plugins(void) {
  char **dirs;
  size_t nd = plugin_search_dirs(NULL, 0, &dirs);
  int found = 0;
  for (size_t i = 0; i < nd; i++) {
    struct dirent **names;
    int n = scandir(dirs[i], &names, NULL, alphasort);
    for (int j = 0; j < n; j++) {
      const char *nm = names[j]->d_name;
      size_t l = strlen(nm);
      if (l > 3 && !strcmp(nm + l - 3, ".so")) {
        char path[PATH_MAX], err[1024];
        snprintf(path, sizeof path, "%s/%s", dirs[i], nm);
        plugin_lib lib;
        if (plugin_open(path, &lib, err, sizeof err) == 0) {
          printf("%-16s %-8s %s\n", lib.desc->name, lib.desc->version ? lib.desc->version : "?",
                 lib.desc->summary ? lib.desc->summary : "");
          plugin_close(&lib);
          found++;
        } else {
          fprintf(stderr, "warning: %s\n", err);
        }
      }
      free(names[j]);
    }
    if (n >= 0) free(names);
    free(dirs[i]);
  }
  free(dirs);
  if (!found) fprintf(stderr, "no plugins found\n");
  return 0;
}

/* Messages of tens of kilobytes are allocated on one stage's thread and
 * freed on another's; glibc's defaults then trim and regrow the heap, or
 * mmap/munmap each block, many thousand times a second. Memory stays bounded
 * by the queues, so keep freed memory for reuse instead. */
static void tune_allocator(void) {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

int main(int argc, char **argv) {
  tune_allocator();
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "run")) return cmd_run(argc - 2, argv + 2, 0);
  if (!strcmp(cmd, "validate")) return cmd_run(argc - 2, argv + 2, 1);
  if (!strcmp(cmd, "plugins")) return cmd_plugins();
  if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 2, argv + 2);
  if (!strcmp(cmd, "cat")) return cmd_cat(argc - 2, argv + 2);
  if (!strcmp(cmd, "new-plugin")) return cmd_new_plugin(argc - 2, argv + 2);
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("myelin %s (plugin ABI %d.%d)\n", MYELIN_CLI_VERSION, MYELIN_ABI_MAJOR, MYELIN_ABI_MINOR);
    return 0;
  }
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "myelin: unknown command '%s'\n", cmd);
  usage(stderr);
  return 2;
}
