/*
 * cli_report.c — the pipeline as a picture: `myelin graph FILE` (Graphviz
 * DOT on stdout) and the HTML page of `myelin run FILE --report DIR`.
 *
 * Both read the loaded pipeline (stages, their plugins, and the resolved
 * edges with the port names and the message kinds validate() narrowed), so
 * they show what runs, not what the YAML spelled. The report is one file,
 * DIR/report.html, with everything inside it: the graph as inline SVG (a
 * layered layout: a stage's column is the length of the longest path from a
 * source), the per-stage numbers of --stats, every image a stage wrote to an
 * output path param (.png or .svg, embedded as data: URIs, so a figure
 * stage's figures appear without naming any plugin), the other output files
 * with their sizes, the exact pipeline text, and the versions of myelin and
 * of each plugin. A small inline script marks the page `data-images="N/M"`
 * once loaded (M images, N decoded), for a headless browser to check.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"
#include "internal.h"

/* ---- shared: edges and layers -------------------------------------------- */

static const char *in_port_name(const stage_def *st, int port) {
  return st->lib.desc && st->lib.desc->inputs && port >= 0 ? st->lib.desc->inputs[port].name : "in";
}
static const char *out_port_name(const stage_def *st, int port) {
  return st->lib.desc && st->lib.desc->outputs && port >= 0 ? st->lib.desc->outputs[port].name : "out";
}
static const char *edge_kind(const stage_def *from, int port) {
  return from->out_kinds && port >= 0 && from->out_kinds[port] ? from->out_kinds[port] : "*";
}

/* depth[i]: the longest path from a source to stage i (its column). */
static int layers(const pipeline *p, int *depth) {
  size_t *order = malloc((p->n ? p->n : 1) * sizeof *order);
  if (!order || pipeline_topo(p, order)) {
    free(order);
    return -1;
  }
  for (size_t k = 0; k < p->n; k++) {
    const stage_def *st = &p->stages[order[k]];
    int d = 0;
    for (size_t e = 0; e < st->n_inputs; e++)
      if (st->inputs[e].from >= 0 && depth[st->inputs[e].from] + 1 > d) d = depth[st->inputs[e].from] + 1;
    depth[order[k]] = d;
  }
  free(order);
  return 0;
}

/* ---- myelin graph -------------------------------------------------------- */

static void dot_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    if (*s == '"' || *s == '\\') fputc('\\', f);
    if (*s == '\n')
      fputs("\\n", f);
    else
      fputc(*s, f);
  }
  fputc('"', f);
}

static void write_dot(const pipeline *p, FILE *f) {
  fputs("digraph ", f);
  dot_str(f, p->name ? p->name : "pipeline");
  fputs(" {\n  graph [rankdir=LR, fontname=\"sans-serif\", label=", f);
  dot_str(f, p->name ? p->name : "pipeline");
  fputs("];\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#e8f0fe\", fontname=\"sans-serif\"];\n"
        "  edge [fontname=\"sans-serif\", fontsize=10];\n",
        f);
  for (size_t i = 0; i < p->n; i++) {
    const stage_def *st = &p->stages[i];
    char label[512];
    snprintf(label, sizeof label, "%s\n%s", st->id, st->plugin);
    fputs("  ", f);
    dot_str(f, st->id);
    fputs(" [label=", f);
    dot_str(f, label);
    fputs("];\n", f);
  }
  for (size_t i = 0; i < p->n; i++) {
    const stage_def *st = &p->stages[i];
    for (size_t e = 0; e < st->n_inputs; e++) {
      const input_ref *r = &st->inputs[e];
      if (r->from < 0) continue;
      const stage_def *from = &p->stages[r->from];
      char label[512];
      snprintf(label, sizeof label, "%s > %s\n%s", out_port_name(from, r->from_port),
               in_port_name(st, r->port), edge_kind(from, r->from_port));
      fputs("  ", f);
      dot_str(f, from->id);
      fputs(" -> ", f);
      dot_str(f, st->id);
      fputs(" [label=", f);
      dot_str(f, label);
      fputs("];\n", f);
    }
  }
  fputs("}\n", f);
}

int cmd_graph(int argc, char **argv) {
  const char *file = NULL;
  set_override *sets = calloc((size_t)argc + 1, sizeof *sets);
  size_t n_sets = 0;
  int rc = 2;
  if (!sets) {
    fprintf(stderr, "myelin graph: error: out of memory\n");
    return 1;
  }
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *set = !strcmp(a, "--set")        ? (i + 1 < argc ? argv[++i] : "")
                      : !strncmp(a, "--set=", 6) ? a + 6
                                                 : NULL;
    if (set) {
      if (cli_parse_set(set, &sets[n_sets])) {
        rc = cli_usage_error("graph", "--set '%s': expected ID.PARAM=VALUE", set);
        goto out;
      }
      n_sets++;
    } else if (a[0] == '-' && a[1]) {
      rc = cli_usage_error("graph", "unknown option '%s'", a);
      goto out;
    } else if (!file)
      file = a;
    else {
      rc = cli_usage_error("graph", "unexpected argument '%s' (one pipeline file)", a);
      goto out;
    }
  }
  if (!file) {
    rc = cli_usage_error("graph", "no pipeline file given");
    goto out;
  }
  myelin_diag d = {0};
  pipeline *p = pipeline_load(file, sets, n_sets, &d);
  diag_print(&d, stderr);
  diag_free(&d);
  if (p) {
    write_dot(p, stdout);
    pipeline_free(p);
    rc = 0;
  }
out:
  for (size_t i = 0; i < n_sets; i++) {
    free((char *)sets[i].stage);
    free((char *)sets[i].param);
  }
  free(sets);
  return rc;
}

/* ---- the HTML report ----------------------------------------------------- */

static void html(FILE *f, const char *s) {
  for (; s && *s; s++)
    switch (*s) {
    case '<':
      fputs("&lt;", f);
      break;
    case '>':
      fputs("&gt;", f);
      break;
    case '&':
      fputs("&amp;", f);
      break;
    case '"':
      fputs("&quot;", f);
      break;
    default:
      fputc(*s, f);
    }
}

static void base64(FILE *f, const unsigned char *b, size_t n) {
  static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (size_t i = 0; i < n; i += 3) {
    unsigned v =
        (unsigned)b[i] << 16 | (i + 1 < n ? (unsigned)b[i + 1] << 8 : 0) | (i + 2 < n ? b[i + 2] : 0);
    fputc(t[v >> 18 & 63], f);
    fputc(t[v >> 12 & 63], f);
    fputc(i + 1 < n ? t[v >> 6 & 63] : '=', f);
    fputc(i + 2 < n ? t[v & 63] : '=', f);
  }
}

static unsigned char *slurp(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, len = 0;
  unsigned char *b = malloc(cap);
  size_t r;
  while (b && (r = fread(b + len, 1, cap - len, f)) > 0) {
    len += r;
    if (len == cap) {
      unsigned char *nb = realloc(b, cap *= 2);
      if (!nb) free(b);
      b = nb;
    }
  }
  fclose(f);
  *n = len;
  return b;
}

static int ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

#define BOX_W 170
#define BOX_H 46
#define COL_W 240
#define ROW_H 70

static void write_svg(const pipeline *p, const int *depth, FILE *f) {
  int maxd = 0, *row = calloc(p->n ? p->n : 1, sizeof *row), *count = calloc(p->n + 1, sizeof *count);
  if (!row || !count) {
    free(row), free(count);
    return;
  }
  for (size_t i = 0; i < p->n; i++) {
    row[i] = count[depth[i]]++;
    if (depth[i] > maxd) maxd = depth[i];
  }
  int rows = 1;
  for (int d = 0; d <= maxd; d++)
    if (count[d] > rows) rows = count[d];
  int W = (maxd + 1) * COL_W + 20, H = rows * ROW_H + 20;
  fprintf(
      f,
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
      "font-family=\"sans-serif\" role=\"img\" aria-label=\"pipeline graph\">\n"
      "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"7\" "
      "markerHeight=\"7\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#555\"/></marker></defs>\n",
      W, H, W, H);
#define BX(i) (10 + depth[i] * COL_W)
#define BY(i) (10 + row[i] * ROW_H + (rows - count[depth[i]]) * ROW_H / 2)
  for (size_t i = 0; i < p->n; i++) {
    const stage_def *st = &p->stages[i];
    for (size_t e = 0; e < st->n_inputs; e++) {
      const input_ref *r = &st->inputs[e];
      if (r->from < 0) continue;
      int x0 = BX(r->from) + BOX_W, y0 = BY(r->from) + BOX_H / 2, x1 = BX(i), y1 = BY(i) + BOX_H / 2;
      fprintf(f,
              "<path d=\"M%d,%d C%d,%d %d,%d %d,%d\" fill=\"none\" stroke=\"#555\" "
              "marker-end=\"url(#arrow)\"/>\n",
              x0, y0, (x0 + x1) / 2, y0, (x0 + x1) / 2, y1, x1, y1);
      fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"10\" fill=\"#555\" text-anchor=\"middle\">",
              (x0 + x1) / 2, (y0 + y1) / 2 - 4);
      html(f, edge_kind(&p->stages[r->from], r->from_port));
      fputs("</text>\n", f);
    }
  }
  for (size_t i = 0; i < p->n; i++) {
    fprintf(f,
            "<g><rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"8\" fill=\"#e8f0fe\" "
            "stroke=\"#4a6fa5\"/>",
            BX(i), BY(i), BOX_W, BOX_H);
    fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"13\" font-weight=\"bold\" text-anchor=\"middle\">",
            BX(i) + BOX_W / 2, BY(i) + 19);
    html(f, p->stages[i].id);
    fprintf(f, "</text><text x=\"%d\" y=\"%d\" font-size=\"11\" fill=\"#333\" text-anchor=\"middle\">",
            BX(i) + BOX_W / 2, BY(i) + 36);
    html(f, p->stages[i].plugin);
    fputs("</text></g>\n", f);
  }
#undef BX
#undef BY
  fputs("</svg>\n", f);
  free(row);
  free(count);
}

static void human(double b, char *buf, size_t n) {
  const char *u[] = {"B", "KB", "MB", "GB", "TB"};
  int i = 0;
  while (b >= 1000 && i < 4)
    b /= 1000, i++;
  snprintf(buf, n, "%.1f %s", b, u[i]);
}

static void write_stats(const pipeline *p, const run_stats *rs, FILE *f) {
  fputs("<table><tr><th>stage</th><th>plugin</th><th>msgs in</th><th>msgs out</th><th>bytes out</th>"
        "<th>msgs/s</th><th>queue</th><th>busy</th><th>counters</th></tr>\n",
        f);
  for (size_t i = 0; i < p->n && i < rs->n; i++) {
    const stage_stats *t = &rs->st[i];
    char bo[32];
    human((double)t->bytes_out, bo, sizeof bo);
    double rate = rs->wall > 0 ? (double)(t->msgs_in > t->msgs_out ? t->msgs_in : t->msgs_out) / rs->wall : 0;
    fputs("<tr><td>", f);
    html(f, p->stages[i].id);
    fputs("</td><td>", f);
    html(f, p->stages[i].plugin);
    fprintf(f, "</td><td>%llu</td><td>%llu</td><td>%s</td><td>%.0f</td>", (unsigned long long)t->msgs_in,
            (unsigned long long)t->msgs_out, bo, rate);
    if (t->has_inputs)
      fprintf(f, "<td>%zu/%zu</td>", t->queue_hiwater, t->queue_cap);
    else
      fputs("<td>-</td>", f);
    fprintf(f, "<td>%.1f%%</td><td>", 100 * t->busy);
    for (size_t c = 0; c < t->n_counters; c++) {
      html(f, t->counter_names[c]);
      fprintf(f, " = %lld%s", (long long)t->counter_values[c], c + 1 < t->n_counters ? "<br>" : "");
    }
    fputs("</td></tr>\n", f);
  }
  fputs("</table>\n", f);
}

/* Every output path param of every stage: images embedded, others listed. */
static void write_outputs(const pipeline *p, FILE *f) {
  int figures = 0, files = 0;
  for (int pass = 0; pass < 2; pass++) {
    fputs(pass ? "<h2>Output files</h2>\n<ul>\n" : "<h2>Figures</h2>\n", f);
    for (size_t i = 0; i < p->n; i++) {
      const stage_def *st = &p->stages[i];
      if (!st->lib.desc || !st->params) continue;
      for (const myelin_param_def *d = st->lib.desc->params; d && d->name; d++) {
        if (d->type != MYELIN_PARAM_PATH) continue;
        const char *path = myelin_param_str(st->params, d->name);
        struct stat sb;
        if (!*path || stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        int png = ends_with(path, ".png"), svg = ends_with(path, ".svg");
        if (!pass && (png || svg)) {
          size_t n = 0;
          unsigned char *b = slurp(path, &n);
          if (!b) continue;
          fprintf(f, "<figure><img alt=\"");
          html(f, path);
          fprintf(f, "\" src=\"data:image/%s;base64,", png ? "png" : "svg+xml");
          base64(f, b, n);
          fputs("\"><figcaption>", f);
          html(f, st->id);
          fputs(": ", f);
          html(f, path);
          fputs("</figcaption></figure>\n", f);
          free(b);
          figures++;
        } else if (pass && !png && !svg) {
          char sz[32];
          human((double)sb.st_size, sz, sizeof sz);
          fputs("<li><code>", f);
          html(f, path);
          fputs("</code> (", f);
          html(f, st->id);
          fprintf(f, ", %s)</li>\n", sz);
          files++;
        }
      }
    }
    if (!pass && !figures) fputs("<p>No stage wrote a .png or .svg file.</p>\n", f);
    if (pass) fputs(files ? "</ul>\n" : "<li>none at a fixed path</li></ul>\n", f);
  }
}

int report_write(const pipeline *p, const run_stats *rs, int exit_code, const char *dir, int argc,
                 char **argv, char *err, size_t errlen) {
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    snprintf(err, errlen, "--report %s: %s", dir, strerror(errno));
    return -1;
  }
  char *path = xasprintf("%s/report.html", dir), *tmp = xasprintf("%s/.report.html.tmp", dir);
  int *depth = calloc(p->n ? p->n : 1, sizeof *depth);
  FILE *f = path && tmp ? fopen(tmp, "w") : NULL;
  if (!f || !depth || layers(p, depth)) {
    snprintf(err, errlen, "--report: cannot write %s: %s", path ? path : dir,
             f ? "out of memory" : strerror(errno));
    if (f) fclose(f);
    free(path), free(tmp), free(depth);
    return -1;
  }
  time_t now = time(NULL);
  char when[64];
  strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %Z", localtime(&now));
  fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>myelin report: ", f);
  html(f, p->name);
  fputs(
      "</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:1100px;color:#222}"
      "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;"
      "font-size:13px}td:nth-child(-n+2),th{text-align:left}pre{background:#f6f8fa;padding:1em;overflow:auto}"
      "figure{margin:1em 0}img{max-width:100%;border:1px solid #ddd}figcaption{font-size:13px;color:#555}"
      ".fail{color:#b00}</style></head>\n<body>\n<h1>",
      f);
  html(f, p->name);
  fputs("</h1>\n", f);
  if (p->description) {
    fputs("<p>", f);
    html(f, p->description);
    fputs("</p>\n", f);
  }
  fprintf(f, "<p class=\"%s\">exit code %d (%s); wall time %.3f s; %s</p>\n<p>command: <code>myelin run",
          exit_code ? "fail" : "ok", exit_code,
          exit_code == 0     ? "success"
          : exit_code == 1   ? "runtime error"
          : exit_code == 130 ? "interrupted after a clean drain"
                             : "error",
          rs ? rs->wall : 0.0, when);
  for (int i = 0; i < argc; i++) {
    fputc(' ', f);
    html(f, argv[i]);
  }
  fputs("</code></p>\n<h2>Pipeline</h2>\n", f);
  write_svg(p, depth, f);
  fputs("<h2>Stages</h2>\n", f);
  if (rs && rs->st)
    write_stats(p, rs, f);
  else
    fputs("<p>No statistics (out of memory).</p>\n", f);
  write_outputs(p, f);
  fputs("<h2>Pipeline file</h2>\n<p><code>", f);
  html(f, p->file);
  fputs("</code></p>\n<pre>", f);
  size_t n = 0;
  unsigned char *text = slurp(p->file, &n);
  if (text) {
    char *t = malloc(n + 1);
    if (t) {
      memcpy(t, text, n);
      t[n] = 0;
      html(f, t);
      free(t);
    }
    free(text);
  }
  fprintf(f,
          "</pre>\n<h2>Versions</h2>\n<table><tr><th>component</th><th>version</th><th>file</th></tr>\n"
          "<tr><td>myelin</td><td>%s (plugin ABI %d.%d)</td><td></td></tr>\n",
          MYELIN_CLI_VERSION, MYELIN_ABI_MAJOR, MYELIN_ABI_MINOR);
  for (size_t i = 0; i < p->n; i++) {
    const stage_def *st = &p->stages[i];
    size_t j = 0;
    while (j < i && strcmp(p->stages[j].plugin, st->plugin))
      j++;
    if (j < i || !st->lib.desc) continue; /* each plugin once */
    fputs("<tr><td>", f);
    html(f, st->plugin);
    fputs("</td><td>", f);
    html(f, st->lib.desc->version);
    fputs("</td><td>", f);
    html(f, st->lib.path);
    fputs("</td></tr>\n", f);
  }
  fputs("</table>\n<script>\n"
        "window.addEventListener('load', function () {\n"
        "  var imgs = document.images, ok = 0;\n"
        "  for (var i = 0; i < imgs.length; i++) if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++;\n"
        "  document.body.setAttribute('data-images', ok + '/' + imgs.length);\n"
        "});\n</script>\n</body></html>\n",
        f);
  int bad = ferror(f);
  bad |= fclose(f) != 0;
  if (bad || rename(tmp, path) != 0) {
    snprintf(err, errlen, "--report: cannot write %s: %s", path, strerror(errno));
    remove(tmp);
    free(path), free(tmp), free(depth);
    return -1;
  }
  free(path), free(tmp), free(depth);
  return 0;
}
