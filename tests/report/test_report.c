/*
 * `myelin graph FILE` and `myelin run FILE --report DIR`.
 *
 *  - graph: the DOT text of a fan-out/fan-in pipeline has one node per stage
 *    and one edge per input (named ports and kinds), every edge between
 *    declared nodes, balanced braces and quotes; Graphviz's `dot` parses it
 *    when installed. Bad command lines and bad pipeline files exit 2.
 *  - report: the ISC demo run with figure stages writes DIR/report.html with
 *    the graph (inline SVG), a statistics row per stage, every figure
 *    embedded (no external reference: the page is self-contained), the
 *    pipeline text and versions; headless Chromium loads it with every image
 *    decoded (the page marks data-images="N/M") and screenshots it. A failed
 *    run still gets its report, saying exit code 1.
 */
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static const char *bin(void) { return mt_env("MYELIN_BIN", "myelin"); }

static size_t count(const char *s, const char *needle) {
  size_t n = 0;
  for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle))
    n++;
  return n;
}

static int have_cmd(const char *name) { return mt_run(mt_strf("command -v %s >/dev/null", name), NULL) == 0; }

START_TEST(graph_dot) {
  char *d = mt_tmpdir(), *out = NULL;
  mt_write(mt_strf("%s/p.yaml", d),
           "name: fan \"out\"\nstages:\n"
           "  - {id: gen, plugin: gen_source, params: {count: 10}}\n"
           "  - {id: a, plugin: passthrough, inputs: [gen]}\n"
           "  - {id: b, plugin: passthrough, inputs: [gen]}\n"
           "  - {id: rec, plugin: file_sink, inputs: [a, b], params: {path: x.mpk}}\n");
  int rc = mt_run(mt_strf("%s graph %s/p.yaml 2>/dev/null", bin(), d), &out);
  ck_assert_msg(rc == 0, "%s", out);
  ck_assert_msg(!strncmp(out, "digraph \"fan \\\"out\\\"\" {", 23), "%s", out);
  ck_assert_int_eq(count(out, "{"), count(out, "}"));
  ck_assert_int_eq(count(out, " -> "), 4); /* gen->a, gen->b, a->rec, b->rec */
  const char *nodes[] = {"gen", "a", "b", "rec"};
  for (int i = 0; i < 4; i++)
    ck_assert_msg(strstr(out, mt_strf("\n  \"%s\" [label=", nodes[i])), "no node %s:\n%s", nodes[i], out);
  ck_assert_msg(strstr(out, "\"gen\" -> \"a\" [label=\"out > in\\n"), "%s", out);
  ck_assert_msg(strstr(out, "\"a\" -> \"rec\"") && strstr(out, "\"b\" -> \"rec\""), "%s", out);
  ck_assert_msg(strstr(out, "[label=\"rec\\nfile_sink\"]"), "%s", out);
  /* every quote is paired (escaped quotes aside) */
  size_t q = 0;
  for (const char *c = out; *c; c++)
    if (*c == '"' && (c == out || c[-1] != '\\')) q++;
  ck_assert_int_eq(q % 2, 0);
  if (have_cmd("dot")) {
    char *svg = NULL;
    rc = mt_run(mt_strf("%s graph %s/p.yaml | dot -Tsvg", bin(), d), &svg);
    ck_assert_msg(rc == 0 && strstr(svg, "<svg") && count(svg, "class=\"node\"") == 4 &&
                      count(svg, "class=\"edge\"") == 4,
                  "dot: %s", svg);
    free(svg);
  } else
    mt_skip_note("graphviz's dot is not installed: the DOT text was checked structurally only");
  free(out);
  ck_assert_int_eq(mt_run(mt_strf("%s graph", bin()), NULL), 2);
  ck_assert_int_eq(mt_run(mt_strf("%s graph %s/p.yaml --bogus", bin(), d), NULL), 2);
  mt_write(mt_strf("%s/bad.yaml", d), "name: bad\nstages:\n  - {id: x, plugin: no_such_plugin}\n");
  rc = mt_run(mt_strf("%s graph %s/bad.yaml", bin(), d), &out);
  ck_assert_msg(rc == 2 && strstr(out, "bad.yaml:3:"), "exit %d: %s", rc, out);
  free(out);
}
END_TEST

/* The report of the ISC demo with three figure stages. */
static char *isc_report(void) {
  const char *py = mt_env("MYELIN_PYTHON", "/usr/bin/python3"), *src = mt_env("MYELIN_SOURCE_DIR", ".");
  char *d = mt_tmpdir(), *out = NULL;
  ck_assert_msg(
      mt_run(mt_strf("%s %s/examples/isc_demo/make_demo.py %s/demo --subjects 5 --trs 60", py, src, d),
             &out) == 0,
      "%s", out);
  free(out);
  mt_write(
      mt_strf("%s/p.yaml", d),
      "name: isc-report\ndescription: ISC with figures <&>\nstages:\n"
      "  - {id: bold, plugin: fmri_source, params: {path: demo/bids, detrend: 1}}\n"
      "  - {id: isc, plugin: isc, inputs: [bold], params: {summary: mean}}\n"
      "  - {id: ortho, plugin: figure, inputs: [isc.map], params: {path: out/isc.png}}\n"
      "  - {id: mosaic, plugin: figure, inputs: [isc.map], params: {path: out/mosaic.svg, view: mosaic}}\n"
      "  - {id: series, plugin: figure, inputs: [bold], params: {path: out/series.png, type: series}}\n"
      "  - {id: npy, plugin: npy_sink, inputs: [isc.map], params: {path: out/isc.npy, field: summary}}\n");
  int rc = mt_run(mt_strf("cd %s && %s run p.yaml --quiet --report rep", d, bin()), &out);
  ck_assert_msg(rc == 0, "%s", out);
  free(out);
  return d;
}

START_TEST(report_contents) {
  MT_NEED_PYTHON("numpy nibabel", "the ISC demo generator");
  char *d = isc_report(), *html = NULL;
  ck_assert_int_eq(mt_run(mt_strf("cat %s/rep/report.html", d), &html), 0);
  ck_assert_msg(strstr(html, "<h1>isc-report</h1>") && strstr(html, "ISC with figures &lt;&amp;&gt;"),
                "title");
  ck_assert_msg(strstr(html, "exit code 0 (success)"), "exit code");
  ck_assert_int_eq(count(html, "<svg"), 1); /* the graph, inline */
  ck_assert_int_eq(count(html, "<rect "), 6);
  ck_assert_int_eq(count(html, "<tr><td>"), 6 + 5); /* stats rows + versions (myelin + 4 plugins) */
  ck_assert_int_eq(count(html, "<img "), 3);
  ck_assert_int_eq(count(html, "src=\"data:image/png;base64,"), 2);
  ck_assert_int_eq(count(html, "src=\"data:image/svg+xml;base64,"), 1);
  ck_assert_msg(strstr(html, "<code>out/isc.npy</code>"), "the npy output is listed");
  ck_assert_msg(strstr(html, "plugin: figure, inputs: [isc.map], params: {path: out/isc.png}"),
                "pipeline text");
  ck_assert_msg(!strstr(html, "src=\"http") && !strstr(html, "href=\"http") && !strstr(html, "url(http"),
                "an external reference");
  ck_assert_msg(strstr(html, "figures = 1"), "the figure stages' counters");
  free(html);
}
END_TEST

START_TEST(report_in_chromium) {
  MT_NEED_PYTHON("numpy nibabel", "the ISC demo generator");
  const char *chromium = have_cmd("chromium")           ? "chromium"
                         : have_cmd("chromium-browser") ? "chromium-browser"
                                                        : NULL;
  if (!chromium) MT_SKIP("chromium is not installed (Debian: chromium)");
  char *d = isc_report(), *out = NULL;
  const char *flags = "--headless --no-sandbox --disable-gpu --virtual-time-budget=5000";
  int rc =
      mt_run(mt_strf("cd %s && HOME=%s timeout 120 %s %s --dump-dom file://%s/rep/report.html 2>/dev/null", d,
                     d, chromium, flags, d),
             &out);
  ck_assert_msg(rc == 0 && strstr(out, "data-images=\"3/3\""),
                "chromium (exit %d) did not decode every image:\n%.2000s", rc, out);
  free(out);
  rc = mt_run(mt_strf("cd %s && HOME=%s timeout 120 %s %s --window-size=1200,2000 --screenshot=%s/shot.png "
                      "file://%s/rep/report.html",
                      d, d, chromium, flags, d, d),
              &out);
  ck_assert_msg(rc == 0 && mt_file_size(mt_strf("%s/shot.png", d)) > 20000, "screenshot (exit %d): %s", rc,
                out);
  free(out);
}
END_TEST

START_TEST(report_of_a_failed_run) {
  char *d = mt_tmpdir(), *out = NULL;
  mt_write(mt_strf("%s/p.yaml", d),
           "name: broken\nstages:\n"
           "  - {id: src, plugin: file_source, params: {path: missing.mpk}}\n"
           "  - {id: rec, plugin: file_sink, inputs: [src], params: {path: out.mpk}}\n");
  int rc = mt_run(mt_strf("cd %s && %s run p.yaml --report rep", d, bin()), &out);
  ck_assert_msg(rc == 1 && strstr(out, "missing.mpk") && strstr(out, "report: rep/report.html"),
                "exit %d: %s", rc, out);
  free(out);
  ck_assert_int_eq(mt_run(mt_strf("grep -c 'exit code 1 (runtime error)' %s/rep/report.html", d), NULL), 0);
  ck_assert_int_eq(mt_run(mt_strf("%s run %s/p.yaml --report", bin(), d), NULL), 2);
  /* an unwritable report folder is an error (exit 1), after the run */
  mt_write(mt_strf("%s/ok.yaml", d),
           "name: ok\nstages:\n  - {id: gen, plugin: gen_source, params: {count: 3}}\n"
           "  - {id: rec, plugin: file_sink, inputs: [gen], params: {path: g.mpk}}\n");
  mt_write(mt_strf("%s/afile", d), "x");
  rc = mt_run(mt_strf("cd %s && %s run ok.yaml --report afile/sub", d, bin()), &out);
  ck_assert_msg(rc == 1 && strstr(out, "--report afile/sub"), "exit %d: %s", rc, out);
  free(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("report");
  struct {
    const char *name;
    const TTest *t;
  } tests[] = {{"graph_dot", graph_dot},
               {"report_contents", report_contents},
               {"report_in_chromium", report_in_chromium},
               {"report_of_a_failed_run", report_of_a_failed_run}};
  for (size_t i = 0; i < sizeof tests / sizeof *tests; i++) {
    TCase *tc = tcase_create(tests[i].name);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, tests[i].t);
    suite_add_tcase(s, tc);
  }
  return mt_run_suite(s);
}
