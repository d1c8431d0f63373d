/*
 * test_loihi_core.c — the Loihi kernels alone (no runtime): bit-accurate
 * simulation against Lava's own ground truth, hand-computed traces, netx's
 * weight optimization, the netx reader on real lava-dl files, and the
 * quantizer. (Links libmyelin only for npy.h.)
 *
 * Reference numbers were computed with Debian's /usr/bin/python3 + numpy
 * (a direct transcription of Lava's PyLifModelBitAcc / PyDenseModelBitAcc
 * that itself reproduces lava_dense_gt exactly) and are committed here.
 */
#include <math.h>
#include <stdint.h>
#include <zlib.h>

#include <myelin/io.h>
#include <myelin/npy.h>

#include "fashion_data.h"
#include "loihi.h"
#include "testutil.h"

/* A file of tests/data/ (provenance and license: tests/data/README.md). */
static char *data_file(const char *rel) {
  return mt_strf("%s/tests/data/%s", mt_env("MYELIN_SOURCE_DIR", "."), rel);
}

/* Loads a gzip'ed fixture .npy (through myelin's io.h and npy.h) as doubles. */
static double *load_npy(const char *rel, int64_t *d0, int64_t *d1) {
  char *path = data_file(rel);
  myelin_array a;
  char err[256];
  uint8_t *buf;
  size_t len;
  ck_assert_msg(myelin_read_file(path, 0, &buf, &len, err, sizeof err) == 0, "%s", err);
  ck_assert_msg(myelin_npy_parse(buf, len, &a, err, sizeof err) == 0, "%s: %s", path, err);
  free(buf);
  ck_assert_int_eq(a.ndim, 2);
  *d0 = a.shape[0];
  *d1 = a.shape[1];
  double *out = malloc(a.count * sizeof(double));
  for (size_t i = 0; i < a.count; i++) {
    if (a.dtype == MYELIN_F8)
      out[i] = ((const double *)a.data)[i];
    else if (a.dtype == MYELIN_I8)
      out[i] = (double)((const int64_t *)a.data)[i];
    else
      ck_abort_msg("%s: unexpected dtype", path);
  }
  myelin_array_free(&a);
  free(path);
  return out;
}

static void one_layer(loihi_net *n, int n_in, int n_out, const int32_t *w, int64_t idecay,
                      int64_t vdecay, int64_t vth, const int32_t *bias) {
  n->n_layers = 1;
  n->layers = calloc(1, sizeof(loihi_layer));
  loihi_layer *L = &n->layers[0];
  L->n_in = n_in;
  L->n_out = n_out;
  L->weight = malloc(sizeof(int32_t) * (size_t)(n_in * n_out));
  memcpy(L->weight, w, sizeof(int32_t) * (size_t)(n_in * n_out));
  if (bias) {
    L->bias = malloc(sizeof(int32_t) * (size_t)n_out);
    memcpy(L->bias, bias, sizeof(int32_t) * (size_t)n_out);
  }
  L->i_decay = idecay;
  L->v_decay = vdecay;
  L->vth_mant = vth;
  L->ref_delay = 1;
}

/* lava-dl tests/lava/lib/dl/netx/gts/dense: 200 -> 256, vth 6, du 4095
 * (iDecay 4096), dv 415, 2000 steps. Spikes and u/64 must match exactly. */
START_TEST(test_lava_dense_gt) {
  int64_t a, b, c, d, e, f, g, h;
  double *in = load_npy("lava_dense_gt/in.npy.gz", &a, &b);
  double *w = load_npy("lava_dense_gt/weight.npy.gz", &c, &d);
  double *out = load_npy("lava_dense_gt/out.npy.gz", &e, &f);
  double *cur = load_npy("lava_dense_gt/current.npy.gz", &g, &h);
  ck_assert(a == 200 && b == 2000 && c == 256 && d == 200 && e == 256 && f == 2000);
  ck_assert(g == 256 && h == 2000);
  int32_t *wi = malloc(sizeof(int32_t) * 256 * 200);
  for (int i = 0; i < 256 * 200; i++) wi[i] = (int32_t)w[i];
  loihi_net net = {0};
  one_layer(&net, 200, 256, wi, 4096, 415, 6, NULL);
  loihi_sim sim;
  char err[256];
  ck_assert_int_eq(loihi_sim_init(&sim, &net, err, sizeof err), 0);
  uint32_t units[200];
  long spike_mismatch = 0, cur_mismatch = 0, spikes = 0;
  for (int t = 0; t < 2000; t++) {
    int k = 0;
    for (int i = 0; i < 200; i++)
      if (in[i * 2000 + t] != 0) units[k++] = (uint32_t)i;
    loihi_sim_step(&sim, units, k);
    const loihi_slayer *L = &sim.layers[0];
    char spiked[256] = {0};
    for (int s = 0; s < L->n_spk; s++) spiked[L->spk[s]] = 1;
    for (int j = 0; j < 256; j++) {
      spikes += spiked[j];
      spike_mismatch += spiked[j] != (out[j * 2000 + t] != 0);
      cur_mismatch += (double)L->u[j] != cur[j * 2000 + t] * 64.0;
    }
  }
  ck_assert_int_eq(spikes, 1826);
  ck_assert_int_eq(spike_mismatch, 0);
  ck_assert_int_eq(cur_mismatch, 0);
  loihi_sim_free(&sim);
  loihi_net_free(&net);
  free(wi);
  free(in);
  free(w);
  free(out);
  free(cur);
}
END_TEST

/* One input, one neuron, W = 10, iDecay 1024 (keep 3072/4096), vDecay 2048,
 * vThMant 20 (VTH 1280). Input spikes at steps 0, 1, 2.
 *   t0: a=0             u=0     v=0
 *   t1: a=10  u=640                     v=640
 *   t2: a=10  u=480+640=1120            v=320+1120=1440 > 1280: spike, v=0
 *   t3: a=10  u=840+640=1480            v=0+1480=1480: spike, v=0
 *   t4: a=0   u=1110                    v=1110
 *   t5: a=0   u=832 (1110*3072=3409920 >> 12 = 832)   v=555+832=1387: spike */
START_TEST(test_hand_trace) {
  int32_t w = 10;
  loihi_net net = {0};
  one_layer(&net, 1, 1, &w, 1024, 2048, 20, NULL);
  loihi_sim sim;
  char err[256];
  ck_assert_int_eq(loihi_sim_init(&sim, &net, err, sizeof err), 0);
  const int64_t eu[6] = {0, 640, 1120, 1480, 1110, 832};
  const int64_t ev[6] = {0, 640, 0, 0, 1110, 0};
  const int es[6] = {0, 0, 1, 1, 0, 1};
  uint32_t zero = 0;
  for (int t = 0; t < 6; t++) {
    loihi_sim_step(&sim, &zero, t < 3 ? 1 : 0);
    ck_assert_int_eq(sim.layers[0].u[0], eu[t]);
    ck_assert_int_eq(sim.layers[0].v[0], ev[t]);
    ck_assert_int_eq(sim.layers[0].n_spk, es[t]);
  }
  loihi_sim_free(&sim);
  loihi_net_free(&net);
}
END_TEST

/* Decay of negative values is sign-magnitude (toward zero), not floor:
 * W = -5 -> u = -320; keep = 4096 - 1000 = 3096; -320*3096 = -990720,
 * 990720 >> 12 = 241 (241.875), so u = -241 (floor would give -242). */
START_TEST(test_negative_decay_rounds_toward_zero) {
  int32_t w = -5;
  loihi_net net = {0};
  one_layer(&net, 1, 1, &w, 1000, 4096, 10, NULL);
  loihi_sim sim;
  char err[256];
  ck_assert_int_eq(loihi_sim_init(&sim, &net, err, sizeof err), 0);
  uint32_t zero = 0;
  loihi_sim_step(&sim, &zero, 1);
  loihi_sim_step(&sim, NULL, 0);
  ck_assert_int_eq(sim.layers[0].u[0], -320);
  ck_assert_int_eq(sim.layers[0].v[0], -320); /* vDecay 4096: v = u */
  loihi_sim_step(&sim, NULL, 0);
  ck_assert_int_eq(sim.layers[0].u[0], -241);
  loihi_sim_free(&sim);
  loihi_net_free(&net);
}
END_TEST

/* 600 inputs of weight 254 spiking together: a = 152400, a*64 = 9753600 >
 * 2^23, so u wraps to 9753600 - 2^24 = -7023616; v is clamped at
 * -(2^23 - 1) on the next step when two such volleys add up. */
START_TEST(test_wrap_and_clamp) {
  int n = 600;
  int32_t *w = malloc(sizeof(int32_t) * (size_t)n);
  for (int i = 0; i < n; i++) w[i] = 254;
  loihi_net net = {0};
  one_layer(&net, n, 1, w, 4096, 0, 100, NULL);
  loihi_sim sim;
  char err[256];
  ck_assert_int_eq(loihi_sim_init(&sim, &net, err, sizeof err), 0);
  ck_assert_int_eq(sim.layers[0].weight_exp, 0);
  uint32_t *all = malloc(sizeof(uint32_t) * (size_t)n);
  for (int i = 0; i < n; i++) all[i] = (uint32_t)i;
  loihi_sim_step(&sim, all, n);
  loihi_sim_step(&sim, all, n);
  ck_assert_int_eq(sim.layers[0].u[0], -7023616);
  ck_assert_int_eq(sim.layers[0].v[0], -7023616);
  loihi_sim_step(&sim, NULL, 0);
  ck_assert_int_eq(sim.layers[0].u[0], -7023616);
  ck_assert_int_eq(sim.layers[0].v[0], -8388607); /* -14047232 clamped */
  /* the portable accumulation path gives the same sums (600 rows > 127) */
  sim.layers[0].avx2 = 0;
  loihi_sim_reset(&sim);
  loihi_sim_step(&sim, all, n);
  loihi_sim_step(&sim, all, n);
  ck_assert_int_eq(sim.layers[0].u[0], -7023616);
  loihi_sim_free(&sim);
  loihi_net_free(&net);
  free(w);
  free(all);
}
END_TEST

/* Bias 3 -> BIAS 192 per step, VTH = 5*64 = 320, vDecay 0 (keeps all):
 * v = 192, 384 > 320 spike, 192, 384 spike, ... */
START_TEST(test_bias) {
  int32_t w = 0, bias = 3;
  loihi_net net = {0};
  one_layer(&net, 1, 1, &w, 4096, 0, 5, &bias);
  loihi_sim sim;
  char err[256];
  ck_assert_int_eq(loihi_sim_init(&sim, &net, err, sizeof err), 0);
  for (int t = 0; t < 6; t++) {
    loihi_sim_step(&sim, NULL, 0);
    ck_assert_int_eq(sim.layers[0].n_spk, t % 2);
    ck_assert_int_eq(sim.layers[0].v[0], t % 2 ? 0 : 192);
  }
  loihi_sim_free(&sim);
  loihi_net_free(&net);
}
END_TEST

/* Delays: two layers of identity-like weights; an input at step 0 reaches
 * layer 1 at step 2, and a sample of T steps is run for T + 2 steps. */
START_TEST(test_layer_delay_and_flush) {
  loihi_net net = {0};
  net.n_layers = 2;
  net.layers = calloc(2, sizeof(loihi_layer));
  for (int l = 0; l < 2; l++) {
    loihi_layer *L = &net.layers[l];
    L->n_in = L->n_out = 1;
    L->weight = malloc(sizeof(int32_t));
    L->weight[0] = 100;
    L->i_decay = 4096;
    L->v_decay = 4096;
    L->vth_mant = 10;
  }
  loihi_sim sim;
  char err[256];
  ck_assert_int_eq(loihi_sim_init(&sim, &net, err, sizeof err), 0);
  uint32_t zero = 0;
  int first[2] = {-1, -1};
  for (int t = 0; t < 4; t++) {
    loihi_sim_step(&sim, &zero, t == 0);
    for (int l = 0; l < 2; l++)
      if (sim.layers[l].n_spk && first[l] < 0) first[l] = t;
  }
  ck_assert_int_eq(first[0], 1);
  ck_assert_int_eq(first[1], 2);
  /* the last input step's spike must still be counted after the flush */
  uint32_t st[1] = {2}, un[1] = {0};
  int32_t counts[1];
  ck_assert_int_eq(loihi_sim_sample(&sim, st, un, 1, 3, counts, err, sizeof err), 0);
  ck_assert_int_eq(counts[0], 1);
  /* out-of-order and out-of-range events are errors naming the event */
  uint32_t st2[2] = {1, 0}, un2[2] = {0, 0};
  ck_assert_int_lt(loihi_sim_sample(&sim, st2, un2, 2, 3, counts, err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "out of order"));
  uint32_t un3[1] = {5};
  ck_assert_int_lt(loihi_sim_sample(&sim, st, un3, 1, 3, counts, err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "unit 5"));
  uint32_t st4[1] = {7};
  ck_assert_int_lt(loihi_sim_sample(&sim, st4, un, 1, 3, counts, err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "step 7"));
  loihi_sim_free(&sim);
  loihi_net_free(&net);
}
END_TEST

/* netx optimize_weight_bits + Lava clip/truncate, values worked through the
 * lava-dl and lava sources by hand. */
START_TEST(test_effective_weights) {
  int32_t eff[4];
  int we;
  const int32_t exc[4] = {0, 2, 4, 30}; /* 255/30 -> 3 scale bits */
  loihi_effective_weights(exc, 4, eff, &we);
  ck_assert_int_eq(we, -3);
  ck_assert(eff[0] == 0 && eff[1] == 16 && eff[2] == 32 && eff[3] == 240);
  const int32_t mix[3] = {-3, 5, 7}; /* min(127/7, 128/3) -> 4 + 1 bits */
  loihi_effective_weights(mix, 3, eff, &we);
  ck_assert_int_eq(we, -5);
  ck_assert(eff[0] == -96 && eff[1] == 160 && eff[2] == 224);
  const int32_t big[2] = {-300, 10}; /* clipped to -256 */
  loihi_effective_weights(big, 2, eff, &we);
  ck_assert_int_eq(we, 0);
  ck_assert(eff[0] == -256 && eff[1] == 10);
  const int32_t odd[2] = {-100, 101}; /* min(127/101, 1.28) -> 0 + 1 bit */
  loihi_effective_weights(odd, 2, eff, &we);
  ck_assert_int_eq(we, -1);
  ck_assert(eff[0] == -200 && eff[1] == 202);
  const int32_t full[3] = {-256, 254, 3}; /* 9 weight bits: nothing truncated */
  loihi_effective_weights(full, 3, eff, &we);
  ck_assert_int_eq(we, 0);
  ck_assert(eff[0] == -256 && eff[1] == 254 && eff[2] == 3);
  const int32_t inh[1] = {-5}; /* inhibitory: -256/-5 -> 5 bits */
  loihi_effective_weights(inh, 1, eff, &we);
  ck_assert(we == -5 && eff[0] == -160);
  const int32_t zero[2] = {0, 0};
  loihi_effective_weights(zero, 2, eff, &we);
  ck_assert(we == 0 && eff[0] == 0 && eff[1] == 0);
}
END_TEST

START_TEST(test_mnist_fixture_loads_and_runs) {
  char *path = data_file("netx/trained_mnist_network.net");
  loihi_net net;
  char err[512];
  int rc = loihi_netx_read(path, &net, err, sizeof err);
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_int_eq(net.n_layers, 3);
  const int sizes[4] = {784, 128, 64, 10};
  const long sums[3] = {-253132, 4866, 2746};
  for (int l = 0; l < 3; l++) {
    loihi_layer *L = &net.layers[l];
    ck_assert_int_eq(L->n_in, sizes[l]);
    ck_assert_int_eq(L->n_out, sizes[l + 1]);
    ck_assert_int_eq(L->i_decay, 410);
    ck_assert_int_eq(L->v_decay, 410);
    ck_assert_int_eq(L->vth_mant, 64);
    ck_assert_int_eq(L->ref_delay, 1);
    ck_assert_ptr_null(L->bias);
    long s = 0;
    for (int i = 0; i < L->n_in * L->n_out; i++) s += L->weight[i];
    ck_assert_int_eq(s, sums[l]);
  }
  ck_assert(net.layers[2].weight[0] == 44 && net.layers[2].weight[3] == 28);
  uint8_t *img = fashion("t10k-images-idx3-ubyte.gz", 3, 16);
  if (img) {
    loihi_sim sim;
    ck_assert_int_eq(loihi_sim_init(&sim, &net, err, sizeof err), 0);
    uint32_t *st = malloc(sizeof(uint32_t) * 784 * 32), *un = malloc(sizeof(uint32_t) * 784 * 32);
    /* numpy reference: input events, output counts, spikes in all layers */
    const size_t n_events[3] = {3211, 7122, 3748};
    const int32_t ref[3][10] = {{0, 0, 31, 0, 0, 0, 0, 0, 0, 0},
                                {0, 0, 0, 0, 0, 0, 31, 0, 0, 0},
                                {0, 0, 0, 0, 0, 0, 27, 0, 29, 5}};
    const uint64_t total[3] = {1598, 1542, 1411};
    /* both accumulation paths (AVX2 when the CPU has it, and the portable one) */
    for (int k = 0; k < 6; k++) {
      if (k == 3)
        for (int l = 0; l < sim.n_layers; l++) sim.layers[l].avx2 = 0;
      size_t n = encode_regular(img + (k % 3) * 784, 32, st, un);
      ck_assert_uint_eq(n, n_events[k % 3]);
      int32_t counts[10];
      ck_assert_int_eq(loihi_sim_sample(&sim, st, un, n, 32, counts, err, sizeof err), 0);
      for (int j = 0; j < 10; j++) ck_assert_int_eq(counts[j], ref[k % 3][j]);
      ck_assert_uint_eq(sim.spikes, total[k % 3]);
    }
    free(st);
    free(un);
    loihi_sim_free(&sim);
    free(img);
  } else {
    mt_skip_note("the simulation part: dataset-fashion-mnist is not installed");
  }
  loihi_net_free(&net);
  free(path);
}
END_TEST

START_TEST(test_netx_rejects_conv_and_garbage) {
  char *path = data_file("netx/tiny.net");
  loihi_net net;
  char err[512] = "";
  ck_assert_int_lt(loihi_netx_read(path, &net, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "tiny.net") && strstr(err, "not supported"), "%s", err);
  free(path);
  char *dir = mt_tmpdir();
  char *bad = mt_strf("%s/bad.net", dir);
  mt_write(bad, "this is not hdf5\n");
  ck_assert_int_lt(loihi_netx_read(bad, &net, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "bad.net"), "%s", err);
  ck_assert_int_lt(loihi_netx_read_mem("junk", 4, &net, err, sizeof err), 0);
  /* a NIR file is HDF5 but not netx */
  char *nir = data_file("nir/lif_norse.nir");
  ck_assert_int_lt(loihi_netx_read(nir, &net, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "/layer"), "%s", err);
  unlink(bad);
  rmdir(dir);
  free(bad);
  free(dir);
  free(nir);
}
END_TEST

START_TEST(test_quantize_rules) {
  ck_assert_int_eq(loihi_decay_register(0.9), 410); /* round(0.1*4096 = 409.6) */
  ck_assert_int_eq(loihi_decay_register(1.0), 0);
  ck_assert_int_eq(loihi_decay_register(0.0), 4096);
  ck_assert_int_eq(loihi_decay_register(-0.5), 4096);
  float w[6] = {0.5f, -0.25f, 0.125f, -0.5f, 0.0f, 0.01f};
  float b[2] = {0.1f, -0.05f};
  loihi_flayer fl = {.n_in = 3, .n_out = 2, .weight = w, .bias = b};
  loihi_fnet f = {.n_layers = 1, .layers = &fl, .vth = 1.0, .cdecay = 0.9, .vdecay = 0.8};
  loihi_net q;
  loihi_qinfo info;
  char err[256];
  ck_assert_int_eq(loihi_quantize(&f, &q, &info, err, sizeof err), 0);
  /* lambda = 127 / (32 * 0.5) = 7.9375 */
  ck_assert(fabs(info.scale - 7.9375) < 1e-12);
  const int32_t ew[6] = {254, -128, 64, -254, 0, 6}; /* rint(7.9375*w*32)*2 */
  for (int i = 0; i < 6; i++) ck_assert_int_eq(q.layers[0].weight[i], ew[i]);
  ck_assert_int_eq(q.layers[0].vth_mant, 508); /* trunc(7.9375*64) */
  /* voltage bias = b / (1 - cdecay) = 1.0, -0.5 */
  ck_assert_int_eq(q.layers[0].bias[0], 508);  /* rint(7.9375*1.0*64) */
  ck_assert_int_eq(q.layers[0].bias[1], -254); /* rint(-254) */
  ck_assert_int_eq(q.layers[0].i_decay, 410);
  ck_assert_int_eq(q.layers[0].v_decay, 819); /* rint(819.2) */
  loihi_net_free(&q);
  f.vth = 0;
  ck_assert_int_lt(loihi_quantize(&f, &q, NULL, err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "vth"));
}
END_TEST

/* Float twin and quantized net agree on a clear-cut input. */
START_TEST(test_float_and_int_agree) {
  float w[4] = {1.0f, 0.0f, 0.0f, 1.0f};
  loihi_flayer fl = {.n_in = 2, .n_out = 2, .weight = w};
  loihi_fnet f = {.n_layers = 1, .layers = &fl, .vth = 1.5, .cdecay = 0.5, .vdecay = 0.5};
  loihi_fsim fs;
  loihi_net q;
  loihi_sim s;
  char err[256];
  ck_assert_int_eq(loihi_fsim_init(&fs, &f, err, sizeof err), 0);
  ck_assert_int_eq(loihi_quantize(&f, &q, NULL, err, sizeof err), 0);
  ck_assert_int_eq(loihi_sim_init(&s, &q, err, sizeof err), 0);
  uint32_t st[8], un[8];
  for (int t = 0; t < 8; t++) {
    st[t] = (uint32_t)t;
    un[t] = 1;
  }
  int32_t cf[2], ci[2];
  ck_assert_int_eq(loihi_fsim_sample(&fs, st, un, 8, 8, cf, err, sizeof err), 0);
  ck_assert_int_eq(loihi_sim_sample(&s, st, un, 8, 8, ci, err, sizeof err), 0);
  ck_assert_int_eq(cf[0], 0);
  ck_assert_int_gt(cf[1], 0);
  ck_assert_int_eq(ci[0], cf[0]);
  ck_assert_int_eq(ci[1], cf[1]);
  ck_assert_int_eq(loihi_argmax(ci, 2), 1);
  loihi_fsim_free(&fs);
  loihi_sim_free(&s);
  loihi_net_free(&q);
}
END_TEST

static Suite *suite(void) {
  Suite *s = suite_create("loihi_core");
  TCase *tc = tcase_create("core");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_lava_dense_gt);
  tcase_add_test(tc, test_hand_trace);
  tcase_add_test(tc, test_negative_decay_rounds_toward_zero);
  tcase_add_test(tc, test_wrap_and_clamp);
  tcase_add_test(tc, test_bias);
  tcase_add_test(tc, test_layer_delay_and_flush);
  tcase_add_test(tc, test_effective_weights);
  tcase_add_test(tc, test_mnist_fixture_loads_and_runs);
  tcase_add_test(tc, test_netx_rejects_conv_and_garbage);
  tcase_add_test(tc, test_quantize_rules);
  tcase_add_test(tc, test_float_and_int_agree);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
