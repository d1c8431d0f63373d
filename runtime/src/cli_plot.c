/*
 * cli_plot.c — `myelin plot FILE -o OUT.png|.svg|.pdf [--type T] [--set PARAM=VALUE]...`
 *
 * A shorthand for a two-stage pipeline, built as text and run like any
 * pipeline file: a source reading FILE (file_source for a .mpk stream,
 * fmri_source for a .nii/.nii.gz image, dataset with `whole: true` for a
 * .npy/.npz array) into a `figure` stage writing OUT. So the figure is the
 * one the `figure` sink draws in a pipeline, with the same params: `--set
 * PARAM=VALUE` sets the figure's (`--set input.PARAM=VALUE` the source's),
 * and every error is reported as a pipeline's would be. The CLI itself knows
 * nothing of figures or formats beyond picking the source by extension.
 * An image or array file carries no context (stat, task) for the figure's
 * title, so its title defaults to the file's name (`--set title=...` wins).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "fault.h"
#include "internal.h"

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

/* The source stage for FILE, as a YAML flow map's plugin and extra params;
 * *named: the figure is titled by the file's name. */
static int source_for(const char *file, const char **plugin, const char **extra, int *named) {
  *extra = "";
  *named = 1;
  if (ends_with(file, ".mpk") || !strcmp(file, "-")) {
    *plugin = "file_source";
    *named = 0; /* messages carry their own context */
  } else if (ends_with(file, ".nii") || ends_with(file, ".nii.gz")) {
    *plugin = "fmri_source";
  } else if (ends_with(file, ".npy") || ends_with(file, ".npz")) {
    *plugin = "dataset";
    *extra = ", whole: true";
  } else
    return -1;
  return 0;
}

/* s as a YAML double-quoted scalar (quotes and backslashes escaped). */
static char *yaml_quoted(const char *s) {
  size_t n = strlen(s);
  char *out = malloc(2 * n + 3), *o = out;
  if (!out) return NULL;
  *o++ = '"';
  for (; *s; s++) {
    if (*s == '"' || *s == '\\') *o++ = '\\';
    *o++ = *s;
  }
  *o++ = '"';
  *o = 0;
  return out;
}

int cmd_plot(int argc, char **argv) {
  const char *file = NULL, *out = NULL, *type = NULL;
  set_override *sets = calloc((size_t)argc + 1, sizeof *sets);
  size_t n_sets = 0;
  int quiet = 0, rc = 2;
  char *text = NULL, *qfile = NULL, *qout = NULL, *qtype = NULL, *qtitle = NULL;
  if (!sets) {
    fprintf(stderr, "myelin plot: error: out of memory\n");
    return 1;
  }
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
      if (i + 1 >= argc) {
        rc = cli_usage_error("plot", "%s needs a file name", a);
        goto done;
      }
      out = argv[++i];
    } else if (!strncmp(a, "--output=", 9))
      out = a + 9;
    else if (!strcmp(a, "--type") || !strncmp(a, "--type=", 7)) {
      type = a[6] ? a + 7 : (i + 1 < argc ? argv[++i] : "");
    } else if (!strcmp(a, "--set") || !strncmp(a, "--set=", 6)) {
      const char *v = a[5] ? a + 6 : (i + 1 < argc ? argv[++i] : "");
      const char *eq = strchr(v, '='), *dot = strchr(v, '.');
      set_override *s = &sets[n_sets];
      if (!eq || eq == v) {
        rc =
            cli_usage_error("plot", "--set '%s': expected PARAM=VALUE (a figure param) or ID.PARAM=VALUE", v);
        goto done;
      }
      int staged = dot && dot < eq;
      s->stage = staged ? strndup(v, (size_t)(dot - v)) : strdup("figure");
      s->param = staged ? strndup(dot + 1, (size_t)(eq - dot - 1)) : strndup(v, (size_t)(eq - v));
      s->value = eq + 1;
      s->arg = v;
      n_sets++;
      if (!s->stage || !s->param) {
        fprintf(stderr, "myelin plot: error: out of memory\n");
        rc = 1;
        goto done;
      }
    } else if (!strcmp(a, "--quiet"))
      quiet = 1;
    else if (a[0] == '-' && a[1]) {
      rc = cli_usage_error("plot", "unknown option '%s'", a);
      goto done;
    } else if (!file)
      file = a;
    else {
      rc = cli_usage_error("plot", "unexpected argument '%s' (one input file)", a);
      goto done;
    }
  }
  if (!file || !out) {
    rc =
        cli_usage_error("plot", !file ? "no input file given" : "no output given (-o OUT.png, .svg or .pdf)");
    goto done;
  }
  const char *plugin, *extra;
  int named;
  if (source_for(file, &plugin, &extra, &named)) {
    rc = cli_usage_error("plot", "%s: cannot tell what it holds (.mpk, .nii, .nii.gz, .npy or .npz)", file);
    goto done;
  }
  if (!(qfile = yaml_quoted(file)) || !(qout = yaml_quoted(out)) ||
      !(qtype = yaml_quoted(type ? type : "auto")) ||
      !(qtitle = yaml_quoted(named ? (strrchr(file, '/') ? strrchr(file, '/') + 1 : file) : "")) ||
      !(text =
            xasprintf("name: plot\nstages:\n"
                      "  - {id: input, plugin: %s, params: {path: %s%s}}\n"
                      "  - {id: figure, plugin: figure, inputs: [input], params: {path: %s, type: %s%s%s}}\n",
                      plugin, qfile, extra, qout, qtype, named ? ", title: " : "", named ? qtitle : ""))) {
    fprintf(stderr, "myelin plot: error: out of memory\n");
    rc = 1;
    goto done;
  }
  char cwd[4096];
  if (!getcwd(cwd, sizeof cwd)) snprintf(cwd, sizeof cwd, ".");
  myelin_diag d = {0};
  pipeline *p = pipeline_load_text("myelin plot", cwd, text, sets, n_sets, &d);
  if (!p) {
    diag_print(&d, stderr);
    rc = diag_out_of_memory(&d) ? 1 : 2;
    diag_free(&d);
    goto done;
  }
  diag_free(&d);
  run_opts o = {0};
  o.quiet = 1; /* the source's and figure's info lines are noise here */
  rc = run_pipeline(p, &o);
  pipeline_free(p);
  if (rc == 0 && !quiet) printf("wrote %s\n", out);
done:
  for (size_t i = 0; i < n_sets; i++) {
    free((char *)sets[i].stage);
    free((char *)sets[i].param);
  }
  free(sets);
  free(text);
  free(qfile);
  free(qout);
  free(qtype);
  free(qtitle);
  return rc;
}
