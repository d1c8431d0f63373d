/*
 * gpt2_model.h — GPT-2 family inference (GPT-2 small/medium/large/xl,
 * distilgpt2) on OpenBLAS, from a Hugging Face model folder.
 *
 * The folder holds config.json (n_embd, n_layer, n_head, n_positions,
 * vocab_size, layer_norm_epsilon, activation_function) and
 * model.safetensors with the `gpt2` tensor names — wte.weight, wpe.weight,
 * h.N.ln_1.{weight,bias}, h.N.attn.c_attn.{weight,bias} [C, 3C],
 * h.N.attn.c_proj [C, C], h.N.ln_2, h.N.mlp.c_fc [C, 4C], h.N.mlp.c_proj
 * [4C, C], ln_f — optionally prefixed by "transformer." (GPT2LMHeadModel),
 * stored as F32, F16 or BF16; weights are kept as float32.
 *
 * gpt2_forward() returns the hidden states numbered as transformers'
 * `output_hidden_states`: 0 = token + position embeddings, i = the output
 * of block i (1 <= i < n_layer), n_layer = the last block's output after
 * the final layer norm ln_f.
 *
 * Plain functions over float arrays; the caller owns a gpt2_work scratch
 * (one per thread). Every matrix product is one cblas_sgemm; attention is
 * causal, computed per head on row blocks so that the masked upper triangle
 * is never multiplied.
 */
#ifndef MYELIN_GPT2_MODEL_H
#define MYELIN_GPT2_MODEL_H

#include <stddef.h>
#include <stdint.h>

enum { GPT2_GELU_TANH = 0, GPT2_GELU_ERF = 1, GPT2_RELU = 2 };

typedef struct gpt2_config {
  int n_vocab, n_ctx, n_embd, n_layer, n_head, act;
  float eps;
  int scale_by_layer; /* scale_attn_by_inverse_layer_idx */
} gpt2_config;

typedef struct gpt2_layer {
  const float *ln1_w, *ln1_b, *attn_w, *attn_b, *aproj_w, *aproj_b;
  const float *ln2_w, *ln2_b, *fc_w, *fc_b, *mproj_w, *mproj_b;
} gpt2_layer;

typedef struct gpt2_model {
  gpt2_config c;
  const float *wte, *wpe, *lnf_w, *lnf_b;
  gpt2_layer *layers;
  float *arena; /* every weight, float32 */
} gpt2_model;

typedef struct gpt2_work {
  float *x, *h, *qkv, *att, *y, *fc;
  size_t T; /* capacity in tokens */
} gpt2_work;

/* Loads dir/config.json and dir/model.safetensors. 0, or -1 with a reason
 * naming the file (and tensor) in err. */
int gpt2_load(const char *dir, gpt2_model *m, char *err, size_t errlen);
/* The same from explicit paths (tests). */
int gpt2_load_files(const char *config, const char *weights, gpt2_model *m, char *err, size_t errlen);
void gpt2_free(gpt2_model *m);

int gpt2_work_init(gpt2_work *w, const gpt2_config *c, size_t T);
void gpt2_work_free(gpt2_work *w);

/* Runs tokens tok[0..T) (T <= n_ctx, ids < n_vocab, positions 0..T-1) and
 * writes hidden state `layers[k]` (0..n_layer) of token t to
 * out[(k * T + t) * n_embd]. Returns 0, or -1 with a reason in err. */
int gpt2_forward(const gpt2_model *m, gpt2_work *w, const int32_t *tok, size_t T, const int *layers,
                 size_t nl, float *out, char *err, size_t errlen);

#endif
