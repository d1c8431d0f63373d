/*
 * test_group_maps.c — group_maps against numpy (ref_group.py) on planted
 * data: 6 subjects, 48 voxels, layers 0, 4 and 8; layer 4 planted in voxels
 * 0-9, layer 8 in voxels 10-19, noise elsewhere; the ceiling is low (out of
 * the mask) in voxels 40-47. Checked: the group mean, exact sign-flip p,
 * BH-FDR and max-statistic FWE masks, the thresholded maps, and the layer
 * profile — equal to numpy, and recovering the planted layers. Also the
 * kernels alone (BH on hand p-values, random patterns near the exact p),
 * and the errors.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gm_kernels.h"
#include "myelin/harness.h"
#include "myelin/npy.h"
#include "testutil.h"

enum { L = 3, S = 6, V = 48 };
static const int layer_ids[L] = {0, 4, 8};
static double r[L][S][V], c[S][V];

static double noise(uint64_t *s) {
  *s = *s * 6364136223846793005ull + 1442695040888963407ull;
  return (double)(*s >> 11) / 9007199254740992.0 - 0.5;
}

static void make_data(void) {
  uint64_t s = 42;
  for (int k = 0; k < S; k++)
    for (int v = 0; v < V; v++) {
      c[k][v] = v < 40 ? 0.5 + 0.2 * noise(&s) : 0.02 + 0.01 * noise(&s);
      for (int l = 0; l < L; l++) {
        double planted = (v < 10 && l == 1) || (v >= 10 && v < 20 && l == 2) ? 0.3 : (v < 20 ? 0.12 : 0);
        r[l][k][v] = planted + 0.1 * noise(&s);
      }
    }
}

static myelin_msg *r_map(int l, int k) {
  myelin_builder *b = myelin_builder_new("map");
  myelin_build_str(b, "stat", "r");
  myelin_build_str(b, "subject", mt_strf("%02d", k + 1));
  myelin_build_str(b, "task", "story");
  myelin_build_int(b, "run", 1);
  myelin_build_int(b, "layer", layer_ids[l]);
  int64_t vs[1] = {V};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 1, vs, r[l][k]);
  return myelin_builder_finish(b);
}

static myelin_msg *ceiling_map(void) {
  myelin_builder *b = myelin_builder_new("map");
  myelin_build_str(b, "stat", "isc");
  myelin_build_str(b, "task", "story");
  myelin_build_int(b, "run", 1);
  int64_t ss[2] = {S, V};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, ss, c);
  myelin_build_array_begin(b, "subjects");
  for (int k = S - 1; k >= 0; k--)
    myelin_build_str(b, NULL, mt_strf("%02d", k + 1)); /* rows in another order */
  myelin_build_array_end(b);
  return myelin_builder_finish(b);
}

/* The ceiling map's rows are subjects 06..01: reorder c to match. */
static myelin_msg *ceiling_map_reordered(void) {
  double tmp[S][V];
  memcpy(tmp, c, sizeof c);
  for (int k = 0; k < S; k++)
    memcpy(c[k], tmp[S - 1 - k], sizeof c[k]);
  myelin_msg *m = ceiling_map();
  memcpy(c, tmp, sizeof c);
  return m;
}

static myelin_harness *run_group(const char *params, int with_ceiling) {
  char err[512];
  myelin_harness *h = myelin_harness_new("group_maps", params, err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  if (with_ceiling) ck_assert_int_eq(myelin_harness_push(h, "ceiling", ceiling_map_reordered()), 0);
  for (int l = L - 1; l >= 0; l--)
    for (int k = 0; k < S; k++)
      ck_assert_int_eq(myelin_harness_push(h, "r", r_map(l, k)), 0);
  ck_assert_msg(myelin_harness_eos(h) == 0, "%s", myelin_harness_error(h));
  return h;
}

static const double *tensor_f8(const myelin_msg *m, const char *key, size_t n) {
  myelin_tensor t;
  ck_assert_msg(myelin_msg_tensor(m, key, &t) == 0, "no %s", key);
  ck_assert_uint_eq(t.count, n);
  return t.data;
}

static void check_against(myelin_harness *h, const char *npz, int fwe) {
  char err[512];
  ck_assert_uint_eq(myelin_harness_count(h, "map"), L + 1);
  for (int l = 0; l < L; l++) {
    const myelin_msg *m = myelin_harness_output(h, "map", (size_t)l);
    int64_t layer;
    ck_assert_int_eq(myelin_msg_int(m, "layer", &layer), 0);
    ck_assert_int_eq(layer, layer_ids[l]);
    myelin_array mean, p, pf, sig;
    ck_assert_msg(myelin_npz_read(npz, mt_strf("mean%d", l), &mean, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(myelin_npz_read(npz, mt_strf("p%d", l), &p, err, sizeof err), 0);
    ck_assert_int_eq(myelin_npz_read(npz, mt_strf("pfwe%d", l), &pf, err, sizeof err), 0);
    ck_assert_int_eq(myelin_npz_read(npz, mt_strf("sig%d", l), &sig, err, sizeof err), 0);
    const double *gm = tensor_f8(m, "mean", V), *gp = tensor_f8(m, "p", V), *gd = tensor_f8(m, "data", V);
    myelin_tensor gs;
    ck_assert_int_eq(myelin_msg_tensor(m, "significant", &gs), 0);
    int nsig = 0;
    for (int v = 0; v < V; v++) {
      double rm = ((double *)mean.data)[v];
      ck_assert_msg(fabs(gm[v] - rm) < 1e-12, "layer %d voxel %d mean %g vs %g", l, v, gm[v], rm);
      ck_assert_msg(fabs(gp[v] - ((double *)p.data)[v]) < 1e-12, "layer %d voxel %d p %g vs %g", l, v, gp[v],
                    ((double *)p.data)[v]);
      int want = ((uint8_t *)sig.data)[v];
      ck_assert_msg(((const uint8_t *)gs.data)[v] == want, "layer %d voxel %d significance", l, v);
      ck_assert(fabs(gd[v] - (want ? rm : 0)) < 1e-12);
      nsig += want;
      if (fwe) {
        const double *gf = tensor_f8(m, "p_fwe", V);
        ck_assert(fabs(gf[v] - ((double *)pf.data)[v]) < 1e-12);
      }
    }
    ck_assert_msg(nsig >= 10, "layer %d: only %d significant voxels", l, nsig);
    myelin_array_free(&mean), myelin_array_free(&p), myelin_array_free(&pf), myelin_array_free(&sig);
  }
  const myelin_msg *prof = myelin_harness_output(h, "map", L);
  myelin_msg_text(prof, "stat", err, sizeof err);
  ck_assert_str_eq(err, "best_layer");
  myelin_array best;
  ck_assert_int_eq(myelin_npz_read(npz, "best", &best, err, sizeof err), 0);
  const double *gb = tensor_f8(prof, "data", V);
  for (int v = 0; v < V; v++)
    ck_assert_msg(gb[v] == ((double *)best.data)[v], "best layer at %d: %g", v, gb[v]);
  myelin_array_free(&best);
}

static char *reference(void) {
  char *d = mt_tmpdir();
  char err[512];
  int64_t rs[3] = {L, S, V}, cs[2] = {S, V}, ls[1] = {L};
  double lay[L] = {0, 4, 8};
  ck_assert(myelin_npy_write(mt_strf("%s/r.npy", d), MYELIN_F8, 3, rs, r, err, sizeof err) == 0);
  ck_assert(myelin_npy_write(mt_strf("%s/c.npy", d), MYELIN_F8, 2, cs, c, err, sizeof err) == 0);
  ck_assert(myelin_npy_write(mt_strf("%s/layers.npy", d), MYELIN_F8, 1, ls, lay, err, sizeof err) == 0);
  char *out = NULL;
  int rc = mt_run(mt_strf("%s %s/tests/group_maps/ref_group.py %s",
                          mt_env("MYELIN_PYTHON", "/usr/bin/python3"), mt_env("MYELIN_SOURCE_DIR", "."), d),
                  &out);
  ck_assert_msg(rc == 0, "%s", out);
  free(out);
  return d;
}

START_TEST(matches_numpy_and_recovers_layers) {
  MT_NEED_PYTHON("numpy", "numpy reference");
  make_data();
  char *d = reference();
  myelin_harness *h = run_group("{threshold: fdr, alpha: 0.05}", 1);
  check_against(h, mt_strf("%s/ref_fdr.npz", d), 0);
  /* planted: voxels 0-9 best at layer 4, 10-19 at layer 8; no ceiling at 40-47 */
  const double *best = tensor_f8(myelin_harness_output(h, "map", L), "data", V);
  for (int v = 0; v < 20; v++)
    ck_assert_msg(best[v] == (v < 10 ? 4 : 8), "voxel %d: best layer %g", v, best[v]);
  const uint8_t *sig;
  myelin_tensor t;
  ck_assert_int_eq(myelin_msg_tensor(myelin_harness_output(h, "map", 1), "significant", &t), 0);
  sig = t.data;
  for (int v = 40; v < V; v++)
    ck_assert(!sig[v]);
  myelin_harness_free(h);
  h = run_group("{threshold: fwe, alpha: 0.05}", 1);
  check_against(h, mt_strf("%s/ref_fwe.npz", d), 1);
  myelin_harness_free(h);
  h = run_group("{threshold: fdr, normalize: none}", 0);
  check_against(h, mt_strf("%s/ref_none.npz", d), 0);
  myelin_harness_free(h);
}
END_TEST

START_TEST(kernels_by_hand) {
  /* BH with m = 5, q = 0.05: thresholds 0.01 .. 0.05; p sorted 0.001 0.012 0.02 0.041 0.3 ->
   * k = 3 (0.02 <= 0.03), so the three smallest. */
  double p[6] = {0.3, 0.012, 0.001, 0.9, 0.041, 0.02};
  unsigned char in[6] = {1, 1, 1, 0, 1, 1}, sig[6];
  ck_assert_uint_eq(gm_fdr_bh(p, in, 6, 0.05, sig), 3);
  ck_assert(sig[1] && sig[2] && sig[5] && !sig[0] && !sig[3] && !sig[4]);
  /* Exact test of 3 subjects all positive: only the identity reaches the mean -> 1/8. */
  double x[3 * 2] = {1, -1, 2, 0.5, 3, 0.2};
  double mean[2], pv[2], pf[2];
  unsigned char all[2] = {1, 1};
  ck_assert_uint_eq(gm_signflip(x, 3, 2, all, 100, 1, mean, pv, pf), 8);
  ck_assert(fabs(mean[0] - 2) < 1e-15 && fabs(pv[0] - 0.125) < 1e-15);
  /* voxel 1: x = -1, 0.5, 0.2 (mean -0.1): patterns with mean >= -0.1 */
  int cnt = 0;
  for (int k = 0; k < 8; k++) {
    double m = ((k & 1) ? 1 : -1) * -1 + ((k & 2) ? -1 : 1) * 0.5 + ((k & 4) ? -1 : 1) * 0.2;
    cnt += m / 3 >= -0.1 / 1.0 - 1e-12;
  }
  ck_assert(fabs(pv[1] - cnt / 8.0) < 1e-15);
  /* Random patterns approach the exact p (12 subjects: 4096 exact vs 4000 random). */
  double y[12 * 3];
  uint64_t s = 9;
  for (int i = 0; i < 36; i++)
    y[i] = noise(&s) + (i % 3 == 0 ? 0.3 : 0);
  double me[3], pe[3], mr[3], pr[3];
  unsigned char in3[3] = {1, 1, 1};
  ck_assert_uint_eq(gm_signflip(y, 12, 3, in3, 4096, 1, me, pe, NULL), 4096);
  ck_assert_uint_eq(gm_signflip(y, 12, 3, in3, 4000, 7, mr, pr, NULL), 4000);
  for (int v = 0; v < 3; v++)
    ck_assert_msg(fabs(pe[v] - pr[v]) < 0.03, "voxel %d: exact %g random %g", v, pe[v], pr[v]);
}
END_TEST

START_TEST(errors) {
  make_data();
  char err[512];
  myelin_harness *h = myelin_harness_new("group_maps", "{threshold: fdr}", err, sizeof err);
  ck_assert_msg(h != NULL, "%s", err);
  ck_assert_int_eq(myelin_harness_push(h, "r", r_map(0, 0)), 0);
  ck_assert_int_eq(myelin_harness_push(h, "r", r_map(0, 1)), 0);
  ck_assert_int_eq(myelin_harness_push(h, "ceiling", ceiling_map()), 0);
  myelin_builder *b = myelin_builder_new("map");
  myelin_build_str(b, "subject", "99");
  myelin_build_str(b, "task", "story");
  myelin_build_int(b, "run", 1);
  myelin_build_int(b, "layer", 0);
  int64_t vs[1] = {V};
  myelin_build_tensor_copy(b, "data", MYELIN_F8, 1, vs, r[0][0]);
  ck_assert_int_eq(myelin_harness_push(h, "r", myelin_builder_finish(b)), 0);
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "no ceiling row for subject 99, task story, run 1"), "%s",
                myelin_harness_error(h));
  myelin_harness_free(h);
  /* normalize: none with a single subject */
  h = myelin_harness_new("group_maps", "{normalize: none}", err, sizeof err);
  ck_assert_int_eq(myelin_harness_push(h, "r", r_map(0, 0)), 0);
  ck_assert_int_ne(myelin_harness_eos(h), 0);
  ck_assert_msg(strstr(myelin_harness_error(h), "at least 2 subjects"), "%s", myelin_harness_error(h));
  myelin_harness_free(h);
}
END_TEST

int main(void) {
  Suite *su = suite_create("group_maps");
  TCase *tc = tcase_create("group");
  tcase_add_test(tc, matches_numpy_and_recovers_layers);
  tcase_add_test(tc, kernels_by_hand);
  tcase_add_test(tc, errors);
  suite_add_tcase(su, tc);
  return mt_run_suite(su);
}
