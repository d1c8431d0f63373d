/*
 * cli.c — the `myelin` command.
 *
 *   myelin run FILE [--set ID.PARAM=VALUE]... [--stats] [--progress[=S]] [--quiet]
 *              [--check-messages] [--report DIR] [--monitor [HOST:]PORT]
 *   myelin validate FILE [--set ...]
 *   myelin plugins [--json]
 *   myelin inspect PLUGIN [--json]
 *   myelin cat FILE.mpk [--json]
 *   myelin graph FILE [--set ...]
 *   myelin plot FILE -o OUT.png|.svg|.pdf [--type T] [--set PARAM=VALUE]...
 *   myelin new-plugin NAME [--dir D]
 *   myelin --help | --version;  myelin CMD --help (or -h): CMD's options
 *
 * Every command refuses an option it does not know (exit 2, with its usage
 * line); the command table below is the one source of all help texts.
 * Exit codes (DESIGN.md section 6): 0 success; 1 runtime error; 2 invalid
 * command line or pipeline file; 130 interrupted after a clean drain.
 * Signals (`run`): the very first thing main() does is block SIGINT and
 * SIGTERM and install handlers that only write the signal's number to a
 * pipe; a dedicated thread, the only one of ours with the signals
 * unblocked, reads the pipe and turns it into a stop request in ordinary
 * thread context. Every thread created later (stage threads, a library's
 * pool started when a plugin is loaded) inherits the blocked mask, and a
 * thread that unblocks them anyway only runs the handler: no thread can be
 * killed by the default action. Signals within SIGNAL_SAME_NS of the first
 * are the same request (a process-group Ctrl-C or `timeout -s INT` delivers
 * two at once); a later one aborts.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cluster.h"
#include "fault.h"
#include "internal.h"
#include "monitor.h"

/* ---- help ---------------------------------------------------------------
 * One table drives `myelin --help` (a line per command), `myelin CMD --help`
 * (the command's options) and the usage line printed after a bad argument,
 * so the three never disagree. */
typedef struct cli_cmd {
  const char *name;
  const char *args;    /* what follows the name in the usage line */
  const char *summary; /* one line for `myelin --help` */
  const char *options; /* option lines for `myelin CMD --help` */
} cli_cmd;

#define HELP_OPT "  -h, --help              this help\n"

static const cli_cmd commands[] = {
    {"run",
     "FILE [--set ID.PARAM=VALUE]... [--stats] [--progress[=S]] [--quiet] [--check-messages] [--report DIR]\n"
     "                  [--monitor [HOST:]PORT]",
     "run a pipeline file until its sources end (Ctrl-C stops and drains)",
     "  --set ID.PARAM=VALUE    override a stage's param (YAML scalar or list syntax); repeatable\n"
     "  --stats                 print per-stage messages, bytes, rates, queue high-water marks and busy\n"
     "                          (CPU time of the stage's thread / wall time) at the end\n"
     "  --progress[=S]          a plain progress line on stderr every S seconds (default 5), TTY or not\n"
     "  --quiet                 no TTY progress line and no info log lines\n"
     "  --check-messages        check every emitted message against its kind's schema (error: exit "
     "1)\n"
     "  --report DIR            write DIR/report.html: the pipeline graph, per-stage statistics, the "
     "figures\n"
     "                          and files the stages wrote, the pipeline text and versions (one "
     "file)\n"
     "  --monitor [HOST:]PORT   serve a live view while the pipeline runs (README: the live view): a page\n"
     "                          of per-stage messages/s, queue fill and busy time, metrics curves, the\n"
     "                          latest map and a spike raster; /api/stats (JSON), /metrics (Prometheus).\n"
     "                          HOST: 127.0.0.1 unless given; PORT 0 picks a free port; a port in use is\n"
     "                          an error (exit 2) before anything runs\n" HELP_OPT},
    {"validate", "FILE [--set ID.PARAM=VALUE]...",
     "check a pipeline file without running it: errors as FILE:LINE:COL (exit 2), missing inputs as warnings",
     "  --set ID.PARAM=VALUE    override a stage's param, as for run; repeatable\n" HELP_OPT},
    {"plugins", "[--json]", "list the plugins on the search path: name, version, summary, file",
     "  --json                  one JSON array of {name, version, summary, path, abi}\n" HELP_OPT},
    {"inspect", "PLUGIN [--json]", "a plugin's params (type, default, range, doc) and ports",
     "  --json                  the descriptor as one JSON object\n" HELP_OPT},
    {"cat", "FILE.mpk [--json]", "print a stream file, one line per message, tensors summarized ('-': stdin)",
     "  --json                  one JSON object per message (tensors as {dtype, shape})\n" HELP_OPT},
    {"graph", "FILE [--set ID.PARAM=VALUE]...",
     "print a pipeline file as a Graphviz DOT graph (stages, ports, kinds)",
     "  --set ID.PARAM=VALUE    override a stage's param, as for run; repeatable\n" HELP_OPT},
    {"plot", "FILE -o OUT.png|.svg|.pdf [--type T] [--set PARAM=VALUE]... [--quiet]",
     "draw a figure of a .mpk stream, a .nii(.gz) image or a .npy array (the figure plugin)",
     "  -o, --output OUT        the figure: .png, .svg or .pdf\n"
     "  --type T                auto (default: from the first message), map, curves, raster, matrix, series\n"
     "  --set PARAM=VALUE       a param of the figure stage (myelin inspect figure), e.g. --set "
     "threshold=0.3\n"
     "                          --set view=mosaic --set background=anat.nii.gz; --set input.PARAM=VALUE "
     "sets\n"
     "                          the source's (file_source, fmri_source or dataset); repeatable\n"
     "  --quiet                 no 'wrote OUT' line\n" HELP_OPT},
    {"new-plugin", "NAME [--dir DIR]", "scaffold a plugin folder: source, Check test, CMakeLists.txt, README",
     "  --dir DIR               create DIR/NAME, DIR too when missing (default: ./NAME)\n" HELP_OPT},
    {NULL, NULL, NULL, NULL}};

static const cli_cmd *find_cmd(const char *name) {
  for (const cli_cmd *c = commands; c->name; c++)
    if (!strcmp(c->name, name)) return c;
  return NULL;
}

static int is_help(const char *arg) { return !strcmp(arg, "-h") || !strcmp(arg, "--help"); }

int cli_help(const char *name) {
  const cli_cmd *c = find_cmd(name);
  printf("usage: myelin %s %s\n\n%s.\n\noptions:\n%s", c->name, c->args, c->summary, c->options);
  return 0;
}

int cli_usage_error(const char *name, const char *fmt, ...) {
  const cli_cmd *c = find_cmd(name);
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "myelin %s: ", name);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nusage: myelin %s %s\n(myelin %s --help for the options)\n", c->name, c->args, c->name);
  return 2;
}

static void usage(FILE *f) {
  fprintf(f,
          "myelin %s: streaming dataflow pipelines (YAML stages, plugin .so files, msgpack messages)\n\n"
          "usage: myelin COMMAND ARGS...  (myelin COMMAND --help: its options)\n\ncommands:\n",
          MYELIN_CLI_VERSION);
  for (const cli_cmd *c = commands; c->name; c++)
    fprintf(f, "  %-12s %s\n", c->name, c->summary);
  fprintf(f, "  %-12s %s\n", "--version", "the version and the plugin ABI it loads");
  fprintf(f,
          "\nenvironment:\n"
          "  MYELIN_PLUGIN_PATH   folders (':'-separated) searched for plugins after the install folder\n"
          "                       %s, before a pipeline's plugin_path\n"
          "  MYELIN_SCHEMA_DIR    folder of message schemas (in use: %s)\n"
          "  MYELIN_DEBUG         set: show the debug log lines of plugins\n"
          "  ${VAR}, ${VAR:-default} in a pipeline file expand from the environment\n",
          plugin_install_dir(), schema_dir());
  if (myelin_fault_enabled())
    fprintf(f, "  MYELIN_FAULT_ALLOC=N, MYELIN_FAULT_WRITE=N, MYELIN_FAULT_REPORT=1\n"
               "                       fault injection (this build only): fail the Nth allocation / write\n");
  fprintf(f, "\nexit codes:\n"
             "  0    success\n"
             "  1    runtime error (the message names the stage and plugin)\n"
             "  2    invalid command line or pipeline file\n"
             "  130  interrupted (SIGINT/SIGTERM) after a clean drain\n");
}

/* ---- run / validate ------------------------------------------------------ */
int cli_parse_set(const char *arg, set_override *s) {
  const char *eq = strchr(arg, '=');
  const char *dot = strchr(arg, '.');
  if (!eq || !dot || dot > eq || dot == arg || dot + 1 == eq) return -1;
  s->stage = strndup(arg, (size_t)(dot - arg));
  s->param = strndup(dot + 1, (size_t)(eq - dot - 1));
  s->value = eq + 1;
  s->arg = arg;
  if (s->stage && s->param) return 0;
  free((char *)s->stage); /* out of memory */
  free((char *)s->param);
  return -1;
}

/* ---- signals ------------------------------------------------------------- */
#define SIGNAL_SAME_NS 1000000000ull /* a repeat within 1 s is the same request */

static int sig_pipe[2] = {-1, -1};
/* The run is over in an MPI job: mpirun sends SIGTERM to ranks still
 * finalizing once one rank exits non-zero; that is no request any more. */
static _Atomic int run_over;

static void on_signal(int sig) { /* async-signal-safe: write(2) only */
  int saved = errno;
  unsigned char b = (unsigned char)sig;
  if (write(sig_pipe[1], &b, 1) < 0) { /* pipe full: a request is already pending */
  }
  errno = saved;
}

static void *signal_thread(void *arg) {
  sigset_t *set = arg;
  pthread_sigmask(SIG_UNBLOCK, set, NULL); /* process-directed signals land here */
  uint64_t first = 0;
  int aborted = 0;
  for (;;) {
    unsigned char b;
    ssize_t n = read(sig_pipe[0], &b, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n != 1) return NULL;
    if (atomic_load(&run_over)) continue;
    const char *what = b == SIGINT ? "interrupt" : "terminate";
    uint64_t now = now_ns();
    if (!first) {
      first = now;
      fprintf(stderr, "\nmyelin: %s: stopping sources and draining (again, after a second, to abort)\n",
              what);
      run_request_stop();
    } else if (now - first > SIGNAL_SAME_NS && !aborted) {
      aborted = 1;
      fprintf(stderr, "myelin: %s again: aborting; sinks discard their unfinished files\n", what);
      run_request_abort();
    } /* else: the same request delivered twice (process and process group) */
  }
  return NULL;
}

/* Blocks SIGINT/SIGTERM in this (the main) thread before anything else
 * starts, installs the handlers and starts the signal thread. */
static void signals_init(void) {
  static sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  if (pipe2(sig_pipe, O_CLOEXEC) != 0) return; /* signals stay blocked: no stop, no kill */
  fcntl(sig_pipe[1], F_SETFL, O_NONBLOCK);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigfillset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  pthread_t t;
  if (pthread_create(&t, NULL, signal_thread, &set) == 0) pthread_detach(t);
}

/* An MPI job (cluster.h) runs only when every rank loaded the pipeline
 * file: returns 1 when all did. When only some failed, they print their
 * errors under a "rank R:" line and rank 0 names them; when all failed,
 * each prints its errors as a plain run does (mpirun --tag-output tells
 * them apart). */
static int ranks_agree(int ok) {
  int n = cluster_size(), bad = 0, first = -1;
  if (n == 1) return ok;
  int *all = calloc((size_t)n, sizeof *all);
  if (!all || cluster_job_allgather_int(ok, all)) {
    free(all);
    return 0;
  }
  for (int r = 0; r < n; r++)
    if (!all[r]) bad++, first = first < 0 ? r : first;
  free(all);
  if (bad && bad < n && !ok) fprintf(stderr, "rank %d:\n", cluster_rank());
  if (bad && ok && cluster_rank() == 0)
    fprintf(stderr, "error: rank %d%s could not load the pipeline file (errors above): no rank runs it\n",
            first, bad > 1 ? " and others" : "");
  return !bad;
}

static int cmd_run(int argc, char **argv, int validate_only) {
  const char *cmd = validate_only ? "validate" : "run";
  const char *file = NULL;
  set_override *sets = calloc((size_t)argc + 1, sizeof *sets);
  size_t n_sets = 0;
  run_opts o = {0};
  run_stats rs = {0};
  const char *report = NULL, *monitor_addr = NULL;
  int rc = 2;
  if (!sets) {
    fprintf(stderr, "myelin %s: error: out of memory\n", cmd);
    return 1;
  }
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *set = !strcmp(a, "--set")        ? (i + 1 < argc ? argv[++i] : "")
                      : !strncmp(a, "--set=", 6) ? a + 6
                                                 : NULL;
    if (set) {
      if (cli_parse_set(set, &sets[n_sets])) {
        rc = cli_usage_error(cmd, "--set '%s': expected ID.PARAM=VALUE", set);
        goto out;
      }
      n_sets++;
    } else if (!validate_only && !strcmp(a, "--stats"))
      o.stats = 1;
    else if (!validate_only && (!strcmp(a, "--progress") || !strncmp(a, "--progress=", 11))) {
      char *end = NULL;
      o.progress_every = a[10] ? strtod(a + 11, &end) : 5.0;
      if (a[10] && (end == a + 11 || *end || !(o.progress_every > 0) || o.progress_every > 86400)) {
        rc = cli_usage_error(cmd, "--progress=%s: expected seconds, e.g. --progress=5", a + 11);
        goto out;
      }
    } else if (!validate_only && !strcmp(a, "--quiet"))
      o.quiet = 1;
    else if (!validate_only && !strcmp(a, "--check-messages"))
      o.check_messages = 1;
    else if (!validate_only && (!strcmp(a, "--report") || !strncmp(a, "--report=", 9))) {
      report = a[8] ? a + 9 : (i + 1 < argc ? argv[++i] : "");
      if (!*report) {
        rc = cli_usage_error(cmd, "--report needs a folder");
        goto out;
      }
    } else if (!validate_only && (!strcmp(a, "--monitor") || !strncmp(a, "--monitor=", 10))) {
      monitor_addr = a[9] ? a + 10 : (i + 1 < argc ? argv[++i] : "");
      if (!*monitor_addr) {
        rc = cli_usage_error(cmd, "--monitor needs [HOST:]PORT, e.g. --monitor 8080");
        goto out;
      }
    } else if (a[0] == '-' && a[1]) {
      rc = cli_usage_error(cmd, "unknown option '%s'", a);
      goto out;
    } else if (!file)
      file = a;
    else {
      rc = cli_usage_error(cmd, "unexpected argument '%s' (one pipeline file per command)", a);
      goto out;
    }
  }
  if (!file) {
    rc = cli_usage_error(cmd, "no pipeline file given");
    goto out;
  }
  myelin_diag d = {0};
  pipeline *p = pipeline_load(file, sets, n_sets, &d);
  if (!validate_only && !ranks_agree(p != NULL)) { /* an MPI job runs on every rank or on none */
    if (p) {
      pipeline_free(p);
      diag_free(&d);
      goto out;
    }
  }
  if (!p) {
    diag_print(&d, stderr);
    fprintf(stderr, "%zu error%s\n", d.n, d.n == 1 ? "" : "s");
    if (diag_out_of_memory(&d)) rc = 1; /* not the file's fault: a runtime failure */
    diag_free(&d);
    goto out;
  }
  diag_free(&d);
  if (validate_only) { /* shadowed plugins, input files not there yet: warnings, the file is still valid */
    myelin_diag w = {0};
    pipeline_warnings(p, &w);
    diag_print(&w, stderr);
    rc = diag_out_of_memory(&w) ? 1 : 0;
    if (!rc && w.n)
      printf("%s: ok (%zu stages, %zu warning%s)\n", file, p->n, w.n, w.n == 1 ? "" : "s");
    else if (!rc)
      printf("%s: ok (%zu stages)\n", file, p->n);
    diag_free(&w);
    pipeline_free(p);
    goto out;
  }
  o.progress = !o.quiet && isatty(2); /* an explicit --progress prints even with --quiet */
  if (report) o.collect = &rs;
  monitor *mon = NULL;
  int mon_ok = 1;
  /* bound before anything runs: a taken port is the command line's error. In an MPI job rank 0
   * serves its own stages, and every rank learns whether it could, so none runs alone. */
  if (monitor_addr && cluster_rank() == 0) {
    char err[512];
    if (!(mon = monitor_start(monitor_addr, p, err, sizeof err))) {
      fprintf(stderr, "myelin run: error: --monitor %s: %s\n", monitor_addr, err);
      mon_ok = 0;
    } else {
      fprintf(stderr, "monitor: %s\n", monitor_url(mon));
      o.observer = monitor_observer(mon);
    }
  }
  if (monitor_addr && cluster_size() > 1) {
    int *all = calloc((size_t)cluster_size(), sizeof *all);
    mon_ok = all && !cluster_job_allgather_int(mon_ok, all) && all[0];
    free(all);
  }
  if (!mon_ok) {
    monitor_stop(mon);
    pipeline_free(p);
    goto out;
  }
  rc = run_pipeline(p, &o);
  monitor_stop(mon);
  if (cluster_size() > 1) atomic_store(&run_over, 1);
  if (report && cluster_rank() != 0) { /* one report per job: rank 0's */
    report = NULL;
    run_stats_free(&rs);
  }
  if (report) {
    char err[1024];
    if (report_write(p, &rs, rc, report, argc, argv, err, sizeof err)) {
      fprintf(stderr, "myelin run: error: %s\n", err);
      if (!rc) rc = 1;
    } else if (!o.quiet)
      fprintf(stderr, "report: %s/report.html\n", report);
    run_stats_free(&rs);
  }
  pipeline_free(p);
out:
  for (size_t i = 0; i < n_sets; i++) {
    free((char *)sets[i].stage);
    free((char *)sets[i].param);
  }
  free(sets);
  return rc;
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
  if (argc > 1 && (!strcmp(argv[1], "run") || !strcmp(argv[1], "plot")))
    signals_init(); /* before any plugin loads */
  tune_allocator();
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  for (int i = 2; find_cmd(cmd) && i < argc; i++) /* -h/--help anywhere: `myelin run FILE --help` */
    if (is_help(argv[i])) return cli_help(cmd);
  if (!strcmp(cmd, "run")) {
    char err[512];
    if (cluster_init(err, sizeof err)) { /* under an MPI launcher: join the job */
      fprintf(stderr, "myelin run: error: %s\n", err);
      return 1;
    }
    int rc = cmd_run(argc - 2, argv + 2, 0);
    cluster_finalize();
    return rc;
  }
  if (!strcmp(cmd, "validate")) return cmd_run(argc - 2, argv + 2, 1);
  if (!strcmp(cmd, "plugins")) return cmd_plugins(argc - 2, argv + 2);
  if (!strcmp(cmd, "inspect")) return cmd_inspect(argc - 2, argv + 2);
  if (!strcmp(cmd, "cat")) return cmd_cat(argc - 2, argv + 2);
  if (!strcmp(cmd, "plot")) return cmd_plot(argc - 2, argv + 2);
  if (!strcmp(cmd, "graph")) return cmd_graph(argc - 2, argv + 2);
  if (!strcmp(cmd, "new-plugin")) return cmd_new_plugin(argc - 2, argv + 2);
  if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
    printf("myelin %s (plugin ABI %d.%d)\n", MYELIN_CLI_VERSION, MYELIN_ABI_MAJOR, MYELIN_ABI_MINOR);
    return 0;
  }
  if (is_help(cmd) || !strcmp(cmd, "help")) {
    if (argc > 2 && find_cmd(argv[2])) return cli_help(argv[2]); /* myelin help CMD */
    if (argc > 2)
      cmd = argv[2];
    else {
      usage(stdout);
      return 0;
    }
  }
  suggest sg;
  suggest_init(&sg, cmd);
  for (const cli_cmd *c = commands; c->name; c++)
    suggest_add(&sg, c->name);
  fprintf(stderr, "myelin: unknown command '%s'%s%s%s (myelin --help lists the commands)\n", cmd,
          sg.best ? "; did you mean '" : "", sg.best ? sg.best : "", sg.best ? "'?" : "");
  return 2;
}
