/*
 * lm_features — GPT-2 family activations of a story's words: `words` ->
 * `features` word events (onset [W], data [W, n_embd * len(layers)]).
 *
 * The model (gpt2_model.c) and tokenizer (gpt2_tok.c) are loaded once in
 * init from a Hugging Face folder; nothing is downloaded and no Python runs.
 * Each `words` message is processed when it arrives, so a live transcript
 * gets features message by message. The text of a story is its words
 * joined by single spaces: its first word is tokenized as itself and every
 * other word as " " + word, which is exactly how GPT-2's byte-level BPE
 * splits the joined text (its pieces never cross a space that starts a
 * word).
 *
 * Stories across messages (`carry: story`). Consecutive messages with the
 * same subject, task, run and source are one story arriving in pieces: the
 * stage keeps the story's last context - 1 tokens and its word count, so a
 * piece's words are tokenized and windowed exactly as if the whole story
 * had come in one message (the windows below are in the story's token
 * positions, and a window never reaches back more than context - 1 tokens
 * before a new word). A message with another context starts a new story.
 * `carry: none` makes every message its own text.
 *
 * Context. A word whose tokens are [b, e) in the story is read by the model
 * in a window of tokens [s, e'), s its start: s = 0 while e <= context;
 * beyond, s is e - context rounded up to a multiple of `stride` (so each word
 * sees between context - stride and context - 1 preceding tokens; stride 1
 * is the exact sliding window, one forward pass per word), and never after
 * b. Words of one message sharing a start share one forward pass over [s,
 * the last of their ends); the model is causal, so a token's hidden state
 * does not depend on where the pass ends. A word's feature is its last
 * token's hidden state, or the mean over its tokens (pool), for each layer
 * asked for, layer-major.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpt2_model.h"
#include "gpt2_tok.h"
#include "myelin/io.h"
#include "myelin/plugin.h"

typedef struct lm_state {
  const myelin_host *host;
  myelin_stage *st;
  gpt2_model model;
  gpt2_tok *tok;
  gpt2_work work;
  int *layers;
  size_t nl;
  int pool_mean;
  size_t context, stride;
  double tr;
  char *model_dir;
  int carry;         /* carry: story */
  char *story;       /* the current story's key (subject, task, run, source); NULL = none yet */
  int32_t *hist;     /* its last tokens (at most context - 1) */
  size_t nhist;      /* how many */
  size_t hist_base;  /* the story position of hist[0] */
  size_t words_read; /* the story's words so far */
} lm_state;

/* ---- the window of each word ------------------------------------------------------ */

/* Window start of a word with tokens [b, e) (see the file comment). */
static size_t window_start(size_t b, size_t e, size_t context, size_t stride) {
  if (e <= context) return 0;
  size_t s = (e - context + stride - 1) / stride * stride;
  if (s > b) s = b;
  if (e - s > context) s = e - context; /* a word longer than the context: its last tokens */
  return s;
}

/* Keeps the story's last context - 1 tokens of ids [0, n) (ids[0] is at
 * story position base) for the next message of the story. */
static int keep_history(lm_state *s, const int32_t *ids, size_t n, size_t base) {
  size_t keep = s->context - 1 < n ? s->context - 1 : n;
  if (keep > s->nhist) {
    int32_t *h = realloc(s->hist, (keep ? keep : 1) * sizeof *h);
    if (!h) return s->host->error(s->st, "out of memory");
    s->hist = h;
  }
  memmove(s->hist, ids + n - keep, keep * sizeof *ids);
  s->nhist = keep, s->hist_base = base + n - keep;
  return 0;
}

/* Features of one words message: feats [W, nl * C]. The story's kept
 * tokens come first in ids; positions in ids are story positions minus
 * base. */
static int featurize(lm_state *s, char **words, size_t W, float *feats, size_t *ntok_out, size_t *nwin_out) {
  size_t C = (size_t)s->model.c.n_embd, F = s->nl * C;
  size_t n = s->nhist, cap = n + 64, base = s->hist_base;
  int32_t *ids = malloc(cap * sizeof *ids);
  size_t *wb = malloc((W + 1) * sizeof *wb); /* word w: tokens [wb[w], wb[w + 1]) of ids */
  char err[512];
  int rc = 0;
  if (!wb || !ids) {
    free(ids), free(wb);
    return s->host->error(s->st, "out of memory");
  }
  if (n) memcpy(ids, s->hist, n * sizeof *ids);
  for (size_t w = 0; w < W && rc == 0; w++) {
    wb[w] = n;
    size_t len = strlen(words[w]);
    char *text = malloc(len + 2);
    if (!text) {
      rc = s->host->error(s->st, "out of memory");
      break;
    }
    size_t off = s->words_read + w ? 1 : 0;
    text[0] = ' ';
    memcpy(text + off, words[w], len + 1);
    if (gpt2_tok_encode(s->tok, text, len + off, &ids, &n, &cap, err, sizeof err) != 0)
      rc = s->host->error(s->st, "word %zu: %s", w, err);
    else if (n == wb[w])
      rc = s->host->error(s->st, "word %zu (\"%s\") gives no tokens", w, words[w]);
    free(text);
  }
  wb[W] = n;
  size_t ntok = n - s->nhist;
  size_t *start = rc ? NULL : malloc((W ? W : 1) * sizeof *start);
  float *hid = rc ? NULL : malloc(s->nl * s->context * C * sizeof *hid);
  if (!rc && (!start || !hid)) rc = s->host->error(s->st, "out of memory for %zu tokens", n);
  for (size_t w = 0; !rc && w < W; w++) /* >= base: the kept tokens reach back context - 1 */
    start[w] = window_start(base + wb[w], base + wb[w + 1], s->context, s->stride) - base;
  size_t nwin = 0;
  /* Words are in order and starts never decrease: one pass per distinct start. */
  for (size_t w0 = 0; !rc && w0 < W;) {
    size_t w1 = w0;
    while (w1 < W && start[w1] == start[w0])
      w1++;
    size_t st0 = start[w0], end = wb[w1], T = end - st0;
    if (gpt2_forward(&s->model, &s->work, ids + st0, T, s->layers, s->nl, hid, err, sizeof err) != 0) {
      rc = s->host->error(s->st, "%s", err);
      break;
    }
    nwin++;
    for (size_t w = w0; w < w1; w++) {
      size_t b = wb[w] > st0 ? wb[w] : st0, e = wb[w + 1];
      for (size_t k = 0; k < s->nl; k++) {
        float *dst = feats + w * F + k * C;
        const float *H = hid + k * T * C;
        if (!s->pool_mean) {
          memcpy(dst, H + (e - 1 - st0) * C, C * sizeof *dst);
          continue;
        }
        for (size_t i = 0; i < C; i++) {
          double acc = 0;
          for (size_t t = b; t < e; t++)
            acc += H[(t - st0) * C + i];
          dst[i] = (float)(acc / (double)(e - b));
        }
      }
    }
    w0 = w1;
  }
  if (!rc) rc = keep_history(s, ids, n, base);
  if (!rc) s->words_read += W;
  *ntok_out = ntok, *nwin_out = nwin;
  free(ids), free(wb), free(start), free(hid);
  return rc;
}

/* ---- stories ----------------------------------------------------------------------- */

/* Starts a new story unless m continues the current one (carry: story and
 * the same subject, task, run and source). */
static int story_of(lm_state *s, const myelin_msg *m) {
  char sub[256], task[256], run[256], src[4096], *key = NULL;
  myelin_msg_text(m, "subject", sub, sizeof sub);
  myelin_msg_text(m, "task", task, sizeof task);
  myelin_msg_text(m, "run", run, sizeof run);
  myelin_msg_text(m, "source", src, sizeof src);
  if (asprintf(&key, "%s\x1f%s\x1f%s\x1f%s", sub, task, run, src) < 0)
    return s->host->error(s->st, "out of memory");
  if (s->carry && s->story && !strcmp(s->story, key)) {
    free(key);
    return 0;
  }
  free(s->story);
  s->story = key;
  s->nhist = s->hist_base = s->words_read = 0;
  s->host->counter_add(s->st, "stories", 1);
  return 0;
}

/* ---- messages ---------------------------------------------------------------------- */

static int lm_process(void *state, int port, myelin_msg *m) {
  lm_state *s = state;
  (void)port;
  if (strcmp(myelin_msg_kind(m), "words"))
    return s->host->error(s->st, "expected a words message, got %s", myelin_msg_kind(m));
  myelin_obj wl = myelin_msg_get(m, "words");
  myelin_tensor on;
  if (myelin_obj_type_of(wl) != MYELIN_OBJ_ARRAY)
    return s->host->error(s->st, "words message: `words` must be a list of strings");
  size_t W = myelin_obj_len(wl);
  if (myelin_msg_tensor(m, "onset", &on) != 0 || on.ndim != 1 || (size_t)on.shape[0] != W ||
      on.dtype != MYELIN_F8)
    return s->host->error(s->st, "words message: `onset` must be a <f8 tensor [%zu] (one per word)", W);
  char **words = calloc(W ? W : 1, sizeof *words);
  if (!words) return s->host->error(s->st, "out of memory");
  int rc = 0;
  for (size_t i = 0; i < W && !rc; i++) {
    size_t len;
    const char *p = myelin_obj_str(myelin_obj_at(wl, i), &len);
    if (!p)
      rc = s->host->error(s->st, "words message: word %zu is not a string", i);
    else if (memchr(p, 0, len))
      rc = s->host->error(s->st, "words message: word %zu holds a NUL byte", i);
    else if (!(words[i] = strndup(p, len)))
      rc = s->host->error(s->st, "out of memory");
  }
  size_t C = (size_t)s->model.c.n_embd, F = s->nl * C, ntok = 0, nwin = 0;
  int64_t shape[2] = {(int64_t)W, (int64_t)F};
  if (!rc) rc = story_of(s, m);
  myelin_builder *b = rc ? NULL : myelin_builder_new("features");
  if (!rc && !b) rc = s->host->error(s->st, "out of memory");
  if (!rc) {
    myelin_build_context(b, m);
    myelin_build_float(b, "tr", s->tr);
    myelin_build_tensor_view(b, "onset", &on);
    myelin_tensor off;
    if (myelin_msg_tensor(m, "offset", &off) == 0) myelin_build_tensor_view(b, "offset", &off);
    myelin_build_array_begin(b, "layers");
    for (size_t k = 0; k < s->nl; k++)
      myelin_build_int(b, NULL, s->layers[k]);
    myelin_build_array_end(b);
    myelin_build_int(b, "n_embd", (int64_t)C);
    myelin_build_str(b, "pool", s->pool_mean ? "mean" : "last");
    float *data = myelin_build_tensor(b, "data", MYELIN_F4, 2, shape);
    if (!data)
      rc = s->host->error(s->st, "out of memory for features [%zu, %zu]", W, F);
    else
      rc = featurize(s, words, W, data, &ntok, &nwin);
  }
  for (size_t i = 0; i < W; i++)
    free(words[i]);
  free(words);
  if (rc) return myelin_builder_free(b), rc;
  myelin_msg *out = myelin_builder_finish(b);
  if (!out) return s->host->error(s->st, "could not build the features message (out of memory?)");
  s->host->counter_add(s->st, "words", (int64_t)W);
  s->host->counter_add(s->st, "tokens", (int64_t)ntok);
  s->host->counter_add(s->st, "windows", (int64_t)nwin);
  rc = s->host->emit(s->st, 0, out);
  return rc == MYELIN_ESTOP ? 0 : rc;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

static void lm_fini(void *state) {
  lm_state *s = state;
  if (!s) return;
  gpt2_free(&s->model);
  gpt2_tok_free(s->tok);
  gpt2_work_free(&s->work);
  free(s->layers), free(s->model_dir), free(s->story), free(s->hist);
  free(s);
}

static char *join(const char *dir, const char *name) {
  char *p = NULL;
  return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

/* The tokenizer files: the params, else vocab.json + merges.txt, else
 * encoder.json + vocab.bpe in the model folder. */
static int load_tokenizer(lm_state *s, const myelin_params *p, const char *dir) {
  const char *pv = myelin_param_str(p, "vocab"), *pm = myelin_param_str(p, "merges");
  char *v = *pv ? myelin_input_path(pv, dir) : join(s->model_dir, "vocab.json");
  char *m = *pm ? myelin_input_path(pm, dir) : join(s->model_dir, "merges.txt");
  if (v && m && !*pv && access(v, R_OK) != 0) {
    free(v), free(m);
    v = join(s->model_dir, "encoder.json"), m = join(s->model_dir, "vocab.bpe");
    if (v && access(v, R_OK) != 0) {
      int rc = s->host->error(s->st,
                              "model %s: no tokenizer (vocab.json + merges.txt, or encoder.json + vocab.bpe)",
                              s->model_dir);
      free(v), free(m);
      return rc;
    }
  }
  char err[1024];
  if (v && m) s->tok = gpt2_tok_load(v, m, err, sizeof err);
  int rc = !v || !m ? s->host->error(s->st, "out of memory") : !s->tok ? s->host->error(s->st, "%s", err) : 0;
  free(v), free(m);
  return rc;
}

static int lm_setup(lm_state *s, const myelin_params *p) {
  const char *dir = s->host->pipeline_dir ? s->host->pipeline_dir(s->st) : NULL;
  s->model_dir = myelin_input_path(myelin_param_str(p, "model"), dir);
  if (!s->model_dir) return s->host->error(s->st, "out of memory");
  char err[1024];
  if (gpt2_load(s->model_dir, &s->model, err, sizeof err) != 0)
    return s->host->error(s->st, "model: %s", err);
  int rc = load_tokenizer(s, p, dir);
  if (rc) return rc;
  const gpt2_config *c = &s->model.c;
  if (gpt2_tok_vocab_size(s->tok) > (size_t)c->n_vocab)
    return s->host->error(s->st, "the tokenizer has %zu tokens but the model only %d embeddings",
                          gpt2_tok_vocab_size(s->tok), c->n_vocab);
  size_t nl = myelin_param_len(p, "layers");
  s->nl = nl ? nl : (size_t)c->n_layer + 1;
  s->layers = malloc(s->nl * sizeof *s->layers);
  if (!s->layers) return s->host->error(s->st, "out of memory");
  for (size_t k = 0; k < s->nl; k++) {
    int64_t l = nl ? myelin_param_int_at(p, "layers", k) : (int64_t)k;
    if (l < 0) l += c->n_layer + 1; /* -1 = the last (after ln_f) */
    if (l < 0 || l > c->n_layer)
      return s->host->error(s->st,
                            "layers[%zu] = %lld: this model has hidden states 0..%d (-%d..-1 from the end)",
                            k, (long long)myelin_param_int_at(p, "layers", k), c->n_layer, c->n_layer + 1);
    s->layers[k] = (int)l;
  }
  s->context = (size_t)myelin_param_int(p, "context");
  if (s->context > (size_t)c->n_ctx)
    return s->host->error(s->st, "context %zu: the model has %d positions", s->context, c->n_ctx);
  s->stride = (size_t)myelin_param_int(p, "stride");
  if (s->stride == 0) s->stride = s->context > 1 ? s->context / 2 : 1;
  if (s->stride > s->context) return s->host->error(s->st, "stride %zu > context %zu", s->stride, s->context);
  s->pool_mean = !strcmp(myelin_param_str(p, "pool"), "mean");
  s->carry = !strcmp(myelin_param_str(p, "carry"), "story");
  s->tr = myelin_param_float(p, "tr");
  if (gpt2_work_init(&s->work, c, s->context) != 0)
    return s->host->error(s->st, "out of memory for a %zu-token work buffer", s->context);
  s->host->log(s->st, MYELIN_LOG_INFO,
               "%s: %d layers, %d wide, %d heads, %zu tokens; context %zu, stride %zu", s->model_dir,
               c->n_layer, c->n_embd, c->n_head, gpt2_tok_vocab_size(s->tok), s->context, s->stride);
  return 0;
}

static int lm_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  lm_state *s = calloc(1, sizeof *s);
  if (!s) return host->error(st, "out of memory");
  s->host = host, s->st = st;
  int rc = lm_setup(s, p);
  if (rc) {
    lm_fini(s);
    return rc;
  }
  *state = s;
  return 0;
}

static const myelin_param_def lm_params[] = {
    {.name = "model",
     .type = MYELIN_PARAM_INPUT_PATH,
     .doc = "A Hugging Face GPT-2 folder: config.json, model.safetensors (gpt2 tensor names; F32, F16 or "
            "BF16) and "
            "the tokenizer (vocab.json + merges.txt, or encoder.json + vocab.bpe)."},
    {.name = "vocab",
     .type = MYELIN_PARAM_INPUT_PATH,
     .def = "",
     .doc = "The vocabulary file, if not in the model folder."},
    {.name = "merges",
     .type = MYELIN_PARAM_INPUT_PATH,
     .def = "",
     .doc = "The merges file, if not in the model folder."},
    {.name = "layers",
     .type = MYELIN_PARAM_INT_LIST,
     .def = "[]",
     .has_range = 1,
     .min = -1000,
     .max = 1000,
     .doc = "Hidden states as transformers numbers them: 0 = embeddings, i = output of block i, n_layer = "
            "after the "
            "final layer norm; negative counts from the end (-1 = the last); [] = all."},
    {.name = "pool",
     .type = MYELIN_PARAM_ENUM,
     .def = "last",
     .choices = "last|mean",
     .doc = "A word's feature: its last token's hidden state, or the mean over its tokens."},
    {.name = "context",
     .type = MYELIN_PARAM_INT,
     .def = "1024",
     .has_range = 1,
     .min = 1,
     .max = 1 << 20,
     .unit = "tokens",
     .doc = "Tokens a word sees (itself included), at most the model's n_positions."},
    {.name = "stride",
     .type = MYELIN_PARAM_INT,
     .def = "0",
     .has_range = 1,
     .min = 0,
     .max = 1 << 20,
     .unit = "tokens",
     .doc = "Past the first `context` tokens, windows start at multiples of stride, so a word sees between "
            "context - "
            "stride and context - 1 preceding tokens; 1 = an exact sliding window (one forward pass per "
            "word); 0 = "
            "context / 2."},
    {.name = "carry",
     .type = MYELIN_PARAM_ENUM,
     .def = "story",
     .choices = "story|none",
     .doc = "story: consecutive messages with the same subject, task, run and source are one story "
            "arriving in pieces (a live transcript): each word sees the story's preceding tokens as if "
            "it had come in one message; another context starts a new story. none: every message is "
            "its own text."},
    {.name = "tr",
     .type = MYELIN_PARAM_FLOAT,
     .def = "0",
     .has_range = 1,
     .min = 0,
     .max = 1e6,
     .unit = "s",
     .doc = "The `tr` written in the features message (0 = the run's, for encoding's binning)."},
    {0}};

static const myelin_port_def lm_inputs[] = {
    {.name = "words", .kinds = "words", .doc = "word timings of a text (word_source)"}, {0}};
static const myelin_port_def lm_outputs[] = {
    {.name = "features",
     .kinds = "features",
     .doc = "word events: onset <f8 [W], data <f4 [W, n_embd * len(layers)] (layer-major), layers, context"},
    {0}};

static const myelin_plugin_desc lm_desc = {
    MYELIN_DESC_HEADER,
    .name = "lm_features",
    .version = "1.0.0",
    .summary = "GPT-2 family activations of words (C + OpenBLAS, no Python): words -> features word events",
    .doc = "Byte-level BPE tokenizer and GPT-2 forward pass in C from a Hugging Face folder; hidden states "
           "numbered as "
           "transformers' output_hidden_states. See plugins/lm_features/README.md.",
    .params = lm_params,
    .inputs = lm_inputs,
    .outputs = lm_outputs,
    .init = lm_init,
    .process = lm_process,
    .fini = lm_fini,
};

MYELIN_PLUGIN(lm_desc)
