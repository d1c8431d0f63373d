/*
 * gpt2_model.c — loading and running the GPT-2 of gpt2_model.h.
 *
 * Loading: config.json and the safetensors header are JSON, read with
 * json-c. The safetensors file is mapped read-only; every tensor is checked
 * (dtype, the shape the config implies, offsets inside the data) and copied
 * or converted (F16, BF16) into one float32 arena, so the model owns its
 * weights and the file is unmapped at once.
 *
 * Running: the residual stream x [T, C] goes through each block as in
 * transformers' GPT2Block: x += attn(ln_1(x)); x += mlp(ln_2(x)). Conv1D
 * weights are [in, out] row-major, so every projection is
 * cblas_sgemm(x [T, in], W [in, out]) with the bias pre-filled and beta = 1.
 * Attention runs per head on blocks of ATT_BLOCK query rows: the scores of
 * rows [r0, r1) against keys [0, r1) only (the causal mask hides the rest),
 * softmax in float with the row max subtracted, then P V — about half the
 * flops of a full T x T product. The forward stops after the deepest layer
 * asked for.
 */
#include "gpt2_model.h"

#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <json.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "myelin/io.h"

#define ATT_BLOCK 128

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* ---- config.json ------------------------------------------------------------------- */

static json_object *parse_json(const char *path, const char *text, size_t len, char *err, size_t errlen) {
  struct json_tokener *tk = json_tokener_new();
  if (!tk) return fail(err, errlen, "out of memory"), NULL;
  json_object *root = json_tokener_parse_ex(tk, text, (int)len);
  if (!root || !json_object_is_type(root, json_type_object)) {
    fail(err, errlen, "%s: not a JSON object (%s, at byte %zu)", path,
         root ? "another JSON value" : json_tokener_error_desc(json_tokener_get_error(tk)),
         json_tokener_get_parse_end(tk));
    json_object_put(root);
    root = NULL;
  }
  json_tokener_free(tk);
  return root;
}

/* An integer field (first of two names); def when absent and def >= 0. */
static int cfg_int(json_object *o, const char *path, const char *a, const char *b, int def, int *out,
                   char *err, size_t errlen) {
  json_object *v = NULL;
  if (!json_object_object_get_ex(o, a, &v) && !(b && json_object_object_get_ex(o, b, &v))) {
    if (def >= 0) return *out = def, 0;
    return fail(err, errlen, "%s: no \"%s\"", path, a);
  }
  if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) <= 0 ||
      json_object_get_int64(v) > (1 << 24))
    return fail(err, errlen, "%s: \"%s\" must be a positive integer", path, a);
  *out = (int)json_object_get_int64(v);
  return 0;
}

static int load_config(const char *path, gpt2_config *c, char *err, size_t errlen) {
  uint8_t *text = NULL;
  size_t len = 0;
  char e[512];
  if (myelin_read_file(path, (size_t)16 << 20, &text, &len, e, sizeof e) != 0)
    return fail(err, errlen, "%s: %s", path, e);
  json_object *o = parse_json(path, (const char *)text, len, err, errlen);
  free(text);
  if (!o) return -1;
  int rc = -1;
  json_object *v;
  memset(c, 0, sizeof *c);
  c->eps = 1e-5f;
  if (json_object_object_get_ex(o, "model_type", &v) && strcmp(json_object_get_string(v), "gpt2")) {
    fail(err, errlen, "%s: model_type \"%s\": only gpt2 models are supported", path,
         json_object_get_string(v));
    goto out;
  }
  if (cfg_int(o, path, "n_embd", "hidden_size", -1, &c->n_embd, err, errlen) ||
      cfg_int(o, path, "n_layer", "num_hidden_layers", -1, &c->n_layer, err, errlen) ||
      cfg_int(o, path, "n_head", "num_attention_heads", -1, &c->n_head, err, errlen) ||
      cfg_int(o, path, "n_positions", "n_ctx", 1024, &c->n_ctx, err, errlen) ||
      cfg_int(o, path, "vocab_size", NULL, 50257, &c->n_vocab, err, errlen))
    goto out;
  if (c->n_embd % c->n_head) {
    fail(err, errlen, "%s: n_embd %d is not a multiple of n_head %d", path, c->n_embd, c->n_head);
    goto out;
  }
  if (json_object_object_get_ex(o, "layer_norm_epsilon", &v)) {
    double d = json_object_get_double(v);
    if (!(d > 0 && d < 1)) {
      fail(err, errlen, "%s: layer_norm_epsilon must be in (0, 1)", path);
      goto out;
    }
    c->eps = (float)d;
  }
  c->act = GPT2_GELU_TANH;
  if (json_object_object_get_ex(o, "activation_function", &v)) {
    const char *a = json_object_get_string(v);
    if (!strcmp(a, "gelu_new") || !strcmp(a, "gelu_pytorch_tanh") || !strcmp(a, "gelu_fast"))
      c->act = GPT2_GELU_TANH;
    else if (!strcmp(a, "gelu"))
      c->act = GPT2_GELU_ERF;
    else if (!strcmp(a, "relu"))
      c->act = GPT2_RELU;
    else {
      fail(err, errlen, "%s: activation_function \"%s\" (gelu_new, gelu_pytorch_tanh, gelu or relu)", path,
           a);
      goto out;
    }
  }
  if (json_object_object_get_ex(o, "scale_attn_weights", &v) && !json_object_get_boolean(v)) {
    fail(err, errlen, "%s: scale_attn_weights false is not supported", path);
    goto out;
  }
  if (json_object_object_get_ex(o, "scale_attn_by_inverse_layer_idx", &v))
    c->scale_by_layer = json_object_get_boolean(v);
  rc = 0;
out:
  json_object_put(o);
  return rc;
}

/* ---- safetensors ------------------------------------------------------------------- */

static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1F, man = h & 0x3FF, bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else { /* subnormal */
      exp = 127 - 15 + 1;
      while (!(man & 0x400))
        man <<= 1, exp--;
      bits = sign | (exp << 23) | ((man & 0x3FF) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7F800000u | (man << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

typedef struct st_file {
  const char *path;
  const uint8_t *data; /* the byte buffer after the header */
  size_t data_len;
  json_object *hdr;
  const char *prefix; /* "" or "transformer." */
} st_file;

/* Copies tensor `name` (with the file's prefix) of the expected shape into
 * dst as float32. */
static int st_get(const st_file *f, const char *name, int d0, int d1, float *dst, char *err, size_t errlen) {
  char full[256];
  snprintf(full, sizeof full, "%s%s", f->prefix, name);
  json_object *t, *v;
  if (!json_object_object_get_ex(f->hdr, full, &t))
    return fail(err, errlen, "%s: no tensor \"%s\" (gpt2 tensor names expected)", f->path, full);
  if (!json_object_object_get_ex(t, "dtype", &v) || !json_object_is_type(v, json_type_string))
    return fail(err, errlen, "%s: tensor \"%s\": no dtype", f->path, full);
  const char *dt = json_object_get_string(v);
  size_t es = !strcmp(dt, "F32") ? 4 : (!strcmp(dt, "F16") || !strcmp(dt, "BF16")) ? 2 : 0;
  if (!es) return fail(err, errlen, "%s: tensor \"%s\": dtype %s (F32, F16 or BF16)", f->path, full, dt);
  json_object *shape, *offs;
  if (!json_object_object_get_ex(t, "shape", &shape) || !json_object_is_type(shape, json_type_array) ||
      !json_object_object_get_ex(t, "data_offsets", &offs) || !json_object_is_type(offs, json_type_array) ||
      json_object_array_length(offs) != 2)
    return fail(err, errlen, "%s: tensor \"%s\": no shape or data_offsets", f->path, full);
  size_t nd = json_object_array_length(shape), want_nd = d1 > 0 ? 2 : 1;
  int ok = nd == want_nd && json_object_get_int64(json_object_array_get_idx(shape, 0)) == d0 &&
           (want_nd == 1 || json_object_get_int64(json_object_array_get_idx(shape, 1)) == d1);
  if (!ok) {
    char got[128] = "";
    for (size_t i = 0; i < nd && i < 4; i++) {
      size_t l = strlen(got);
      snprintf(got + l, sizeof got - l, "%s%lld", i ? ", " : "",
               (long long)json_object_get_int64(json_object_array_get_idx(shape, i)));
    }
    if (want_nd == 1)
      return fail(err, errlen, "%s: tensor \"%s\" has shape [%s], config.json implies [%d]", f->path, full,
                  got, d0);
    return fail(err, errlen, "%s: tensor \"%s\" has shape [%s], config.json implies [%d, %d]", f->path, full,
                got, d0, d1);
  }
  int64_t b = json_object_get_int64(json_object_array_get_idx(offs, 0));
  int64_t e = json_object_get_int64(json_object_array_get_idx(offs, 1));
  size_t n = (size_t)d0 * (size_t)(d1 > 0 ? d1 : 1);
  if (b < 0 || e < b || (size_t)e > f->data_len || (size_t)(e - b) != n * es)
    return fail(err, errlen,
                "%s: tensor \"%s\": data_offsets [%lld, %lld] do not hold %zu %s values inside the file",
                f->path, full, (long long)b, (long long)e, n, dt);
  const uint8_t *src = f->data + b;
  if (es == 4) {
    memcpy(dst, src, n * 4);
  } else if (!strcmp(dt, "F16")) {
    for (size_t i = 0; i < n; i++)
      dst[i] = half_to_float((uint16_t)(src[2 * i] | src[2 * i + 1] << 8));
  } else {
    for (size_t i = 0; i < n; i++) {
      uint32_t bits = (uint32_t)(src[2 * i] | src[2 * i + 1] << 8) << 16;
      memcpy(&dst[i], &bits, 4);
    }
  }
  for (size_t i = 0; i < n; i++)
    if (!isfinite(dst[i]))
      return fail(err, errlen, "%s: tensor \"%s\": non-finite value at %zu", f->path, full, i);
  return 0;
}

static int load_weights(const char *path, gpt2_model *m, char *err, size_t errlen) {
  const gpt2_config *c = &m->c;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(err, errlen, "%s: %s", path, strerror(errno));
  struct stat sb;
  if (fstat(fd, &sb) != 0 || sb.st_size < 8) {
    close(fd);
    return fail(err, errlen, "%s: not a safetensors file (too short)", path);
  }
  size_t size = (size_t)sb.st_size;
  const uint8_t *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return fail(err, errlen, "%s: mmap: %s", path, strerror(errno));
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--)
    hlen = hlen << 8 | map[i];
  int rc = -1;
  st_file f = {.path = path};
  if (hlen > size - 8 || hlen > (100u << 20)) {
    fail(err, errlen, "%s: header length %llu does not fit the file (%zu bytes): not a safetensors file",
         path, (unsigned long long)hlen, size);
    goto out;
  }
  f.hdr = parse_json(path, (const char *)map + 8, (size_t)hlen, err, errlen);
  if (!f.hdr) goto out;
  f.data = map + 8 + hlen, f.data_len = size - 8 - (size_t)hlen;
  json_object *probe;
  f.prefix = json_object_object_get_ex(f.hdr, "wte.weight", &probe) ? "" : "transformer.";
  size_t C = (size_t)c->n_embd, L = (size_t)c->n_layer;
  size_t per_layer = 2 * C + C * 3 * C + 3 * C + C * C + C + 2 * C + C * 4 * C + 4 * C + 4 * C * C + C;
  size_t total = (size_t)c->n_vocab * C + (size_t)c->n_ctx * C + L * per_layer + 2 * C;
  m->arena = malloc(total * sizeof(float));
  m->layers = calloc(L, sizeof *m->layers);
  if (!m->arena || !m->layers) {
    fail(err, errlen, "out of memory for %zu weights", total);
    goto out;
  }
  float *p = m->arena;
#define TAKE(field, name, d0, d1)                                                                            \
  do {                                                                                                       \
    if (st_get(&f, name, d0, d1, p, err, errlen) != 0) goto out;                                             \
    field = p;                                                                                               \
    p += (size_t)(d0) * (size_t)((d1) > 0 ? (d1) : 1);                                                       \
  } while (0)
  int Ci = c->n_embd;
  TAKE(m->wte, "wte.weight", c->n_vocab, Ci);
  TAKE(m->wpe, "wpe.weight", c->n_ctx, Ci);
  for (size_t l = 0; l < L; l++) {
    gpt2_layer *ly = &m->layers[l];
    char n[128];
#define LTAKE(field, suffix, d0, d1)                                                                         \
  snprintf(n, sizeof n, "h.%zu.%s", l, suffix);                                                              \
  TAKE(ly->field, n, d0, d1)
    LTAKE(ln1_w, "ln_1.weight", Ci, 0);
    LTAKE(ln1_b, "ln_1.bias", Ci, 0);
    LTAKE(attn_w, "attn.c_attn.weight", Ci, 3 * Ci);
    LTAKE(attn_b, "attn.c_attn.bias", 3 * Ci, 0);
    LTAKE(aproj_w, "attn.c_proj.weight", Ci, Ci);
    LTAKE(aproj_b, "attn.c_proj.bias", Ci, 0);
    LTAKE(ln2_w, "ln_2.weight", Ci, 0);
    LTAKE(ln2_b, "ln_2.bias", Ci, 0);
    LTAKE(fc_w, "mlp.c_fc.weight", Ci, 4 * Ci);
    LTAKE(fc_b, "mlp.c_fc.bias", 4 * Ci, 0);
    LTAKE(mproj_w, "mlp.c_proj.weight", 4 * Ci, Ci);
    LTAKE(mproj_b, "mlp.c_proj.bias", Ci, 0);
#undef LTAKE
  }
  TAKE(m->lnf_w, "ln_f.weight", Ci, 0);
  TAKE(m->lnf_b, "ln_f.bias", Ci, 0);
#undef TAKE
  rc = 0;
out:
  json_object_put(f.hdr);
  munmap((void *)map, size);
  return rc;
}

int gpt2_load_files(const char *config, const char *weights, gpt2_model *m, char *err, size_t errlen) {
  memset(m, 0, sizeof *m);
  if (load_config(config, &m->c, err, errlen) != 0) return -1;
  if (load_weights(weights, m, err, errlen) != 0) {
    gpt2_free(m);
    return -1;
  }
  return 0;
}

int gpt2_load(const char *dir, gpt2_model *m, char *err, size_t errlen) {
  char cfg[4096], wts[4096];
  snprintf(cfg, sizeof cfg, "%s/config.json", dir);
  snprintf(wts, sizeof wts, "%s/model.safetensors", dir);
  return gpt2_load_files(cfg, wts, m, err, errlen);
}

void gpt2_free(gpt2_model *m) {
  free(m->arena), free(m->layers);
  memset(m, 0, sizeof *m);
}

/* ---- forward ------------------------------------------------------------------------- */

int gpt2_work_init(gpt2_work *w, const gpt2_config *c, size_t T) {
  size_t C = (size_t)c->n_embd, B = ATT_BLOCK < T ? ATT_BLOCK : T;
  memset(w, 0, sizeof *w);
  w->x = malloc(T * C * sizeof(float));
  w->h = malloc(T * C * sizeof(float));
  w->qkv = malloc(T * 3 * C * sizeof(float));
  w->att = malloc((B ? B : 1) * T * sizeof(float));
  w->y = malloc(T * C * sizeof(float));
  w->fc = malloc(T * 4 * C * sizeof(float));
  w->T = T;
  if (!w->x || !w->h || !w->qkv || !w->att || !w->y || !w->fc) {
    gpt2_work_free(w);
    return -1;
  }
  return 0;
}

void gpt2_work_free(gpt2_work *w) {
  free(w->x), free(w->h), free(w->qkv), free(w->att), free(w->y), free(w->fc);
  memset(w, 0, sizeof *w);
}

static void layer_norm(const float *x, float *out, size_t T, size_t C, const float *g, const float *b,
                       float eps) {
  for (size_t t = 0; t < T; t++) {
    const float *r = x + t * C;
    float *o = out + t * C;
    float mean = 0, var = 0;
    for (size_t i = 0; i < C; i++)
      mean += r[i];
    mean /= (float)C;
    for (size_t i = 0; i < C; i++)
      var += (r[i] - mean) * (r[i] - mean);
    float inv = 1.0f / sqrtf(var / (float)C + eps);
    for (size_t i = 0; i < C; i++)
      o[i] = (r[i] - mean) * inv * g[i] + b[i];
  }
}

/* out [T, n] (= bias rows) += in [T, k] W [k, n] */
static void linear(const float *in, const float *W, const float *bias, float *out, size_t T, size_t k,
                   size_t n, int accumulate) {
  if (!accumulate)
    for (size_t t = 0; t < T; t++)
      memcpy(out + t * n, bias, n * sizeof(float));
  else
    for (size_t t = 0; t < T; t++)
      for (size_t j = 0; j < n; j++)
        out[t * n + j] += bias[j];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)T, (int)n, (int)k, 1.0f, in, (int)k, W, (int)n,
              1.0f, out, (int)n);
}

static void activation(float *x, size_t n, int act) {
  if (act == GPT2_GELU_TANH) {
    /* 0.5 x (1 + tanh(y)) = x sigmoid(2y): one expf instead of a tanhf (about a third of the cost here) */
    for (size_t i = 0; i < n; i++) {
      float v = x[i];
      x[i] = v / (1.0f + expf(-1.5957691216057308f * (v + 0.044715f * v * v * v)));
    }
  } else if (act == GPT2_GELU_ERF) {
    for (size_t i = 0; i < n; i++)
      x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.7071067811865476f));
  } else {
    for (size_t i = 0; i < n; i++)
      x[i] = x[i] > 0 ? x[i] : 0;
  }
}

/* Causal multi-head attention: qkv [T, 3C] -> y [T, C]. */
static void attention(const gpt2_config *c, gpt2_work *w, size_t T, float scale) {
  size_t C = (size_t)c->n_embd, H = (size_t)c->n_head, d = C / H, ld = 3 * C;
  for (size_t h = 0; h < H; h++) {
    const float *Q = w->qkv + h * d, *K = w->qkv + C + h * d, *V = w->qkv + 2 * C + h * d;
    for (size_t r0 = 0; r0 < T; r0 += ATT_BLOCK) {
      size_t r1 = r0 + ATT_BLOCK < T ? r0 + ATT_BLOCK : T, nb = r1 - r0;
      float *S = w->att; /* [nb, r1], leading dimension r1 */
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)r1, (int)d, scale, Q + r0 * ld,
                  (int)ld, K, (int)ld, 0.0f, S, (int)r1);
      for (size_t i = 0; i < nb; i++) {
        float *row = S + i * r1;
        size_t n = r0 + i + 1; /* keys 0..r0+i */
        float mx = row[0];
        for (size_t j = 1; j < n; j++)
          mx = row[j] > mx ? row[j] : mx;
        float sum = 0;
        for (size_t j = 0; j < n; j++)
          sum += row[j] = expf(row[j] - mx);
        float inv = 1.0f / sum;
        for (size_t j = 0; j < n; j++)
          row[j] *= inv;
        for (size_t j = n; j < r1; j++)
          row[j] = 0;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, (int)d, (int)r1, 1.0f, S, (int)r1, V,
                  (int)ld, 0.0f, w->y + r0 * C + h * d, (int)C);
    }
  }
}

static void emit_state(const float *src, size_t T, size_t C, const int *layers, size_t nl, int which,
                       float *out) {
  for (size_t k = 0; k < nl; k++)
    if (layers[k] == which) memcpy(out + k * T * C, src, T * C * sizeof(float));
}

int gpt2_forward(const gpt2_model *m, gpt2_work *w, const int32_t *tok, size_t T, const int *layers,
                 size_t nl, float *out, char *err, size_t errlen) {
  const gpt2_config *c = &m->c;
  size_t C = (size_t)c->n_embd;
  int deepest = 0;
  for (size_t k = 0; k < nl; k++) {
    if (layers[k] < 0 || layers[k] > c->n_layer)
      return fail(err, errlen, "layer %d: the model has hidden states 0..%d", layers[k], c->n_layer);
    deepest = layers[k] > deepest ? layers[k] : deepest;
  }
  if (T == 0) return 0;
  if (T > (size_t)c->n_ctx || T > w->T)
    return fail(err, errlen, "%zu tokens: more than the model's %d positions (or the work buffer)", T,
                c->n_ctx);
  for (size_t t = 0; t < T; t++) {
    if (tok[t] < 0 || tok[t] >= c->n_vocab)
      return fail(err, errlen, "token %d at %zu: outside the vocabulary of %d", tok[t], t, c->n_vocab);
    const float *e = m->wte + (size_t)tok[t] * C, *p = m->wpe + t * C;
    for (size_t i = 0; i < C; i++)
      w->x[t * C + i] = e[i] + p[i];
  }
  emit_state(w->x, T, C, layers, nl, 0, out);
  float scale0 = 1.0f / sqrtf((float)(C / (size_t)c->n_head));
  for (int l = 0; l < c->n_layer && l < deepest; l++) {
    const gpt2_layer *ly = &m->layers[l];
    layer_norm(w->x, w->h, T, C, ly->ln1_w, ly->ln1_b, c->eps);
    linear(w->h, ly->attn_w, ly->attn_b, w->qkv, T, C, 3 * C, 0);
    attention(c, w, T, c->scale_by_layer ? scale0 / (float)(l + 1) : scale0);
    linear(w->y, ly->aproj_w, ly->aproj_b, w->x, T, C, C, 1);
    layer_norm(w->x, w->h, T, C, ly->ln2_w, ly->ln2_b, c->eps);
    linear(w->h, ly->fc_w, ly->fc_b, w->fc, T, C, 4 * C, 0);
    activation(w->fc, T * 4 * C, c->act);
    linear(w->fc, ly->mproj_w, ly->mproj_b, w->x, T, 4 * C, C, 1);
    if (l + 1 < c->n_layer) emit_state(w->x, T, C, layers, nl, l + 1, out);
  }
  if (deepest == c->n_layer) {
    layer_norm(w->x, w->h, T, C, m->lnf_w, m->lnf_b, c->eps);
    emit_state(w->h, T, C, layers, nl, c->n_layer, out);
  }
  return 0;
}
