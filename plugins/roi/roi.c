/*
 * roi — per-TR ROI feedback: the mean of each region of a mask or atlas,
 * detrended causally and expressed as percent signal change.
 *
 * Regions: `mask` (a NIfTI file: its non-zero voxels are one region) or
 * `atlas` (a NIfTI label image: one region per label listed in `labels`, or
 * per label > 0), on the volumes' grid (geometry.dims must match). For each
 * `volume`, y = the region's mean over the volume's voxels in it. Then, per
 * region, the model ŷ_t of y at this TR:
 *
 *  - detrend none:   ŷ = the baseline (the mean of y over the first
 *                    `baseline` volumes; the running mean until then);
 *  - detrend linear: least squares on [1, t] over volumes 0..t;
 *  - detrend glm:    least squares on [1, t, motion (6)] over volumes 0..t,
 *                    motion from the `motion` field of `realign`.
 *
 * The fit uses only the volumes so far (causal: the normal equations are
 * accumulated, 8x8 at most, and solved each TR with a tiny ridge so that
 * constant or absent regressors do not make them singular). Output: one
 * `tensor` per volume, `data` <f4 [R] = 100 (y − ŷ) / baseline, `name`
 * "roi_psc", `raw` <f4 [R] = y, `labels` (the region names), with the
 * volume's `t`, `index`, `subject`, `task`, `run` passed through.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/myelin.h"
#include "nifti.h"

#define NREG 8

enum { DT_NONE, DT_LINEAR, DT_GLM };

typedef struct roi_region {
  int32_t label;
  double xtx[NREG][NREG], xty[NREG];
  double base_sum;
  size_t base_n;
} roi_region;

typedef struct roi_state {
  const myelin_host *host;
  myelin_stage *st;
  int detrend;
  int64_t baseline;
  int64_t dims[3];
  int32_t *lab;  /* region index per grid voxel (C order), -1 = none */
  roi_region *r; /* regions */
  size_t nr;
  int32_t *vreg; /* region of each column of the volumes (V), built on the first volume */
  size_t V;
  double *sum;
  size_t *cnt;
  uint64_t t; /* volumes seen */
  float *psc, *raw;
} roi_state;

static int cmp_i32(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  return (x > y) - (x < y);
}

/* The region image: labels per grid voxel in C order. */
static int load_regions(roi_state *s, const myelin_params *p) {
  const char *mask = myelin_param_str(p, "mask"), *atlas = myelin_param_str(p, "atlas");
  const char *path = *atlas ? atlas : mask;
  char *full = myelin_input_path(path, s->host->pipeline_dir ? s->host->pipeline_dir(s->st) : NULL);
  if (!full) return MYELIN_ENOMEM;
  char err[768];
  nifti_reader r;
  if (nifti_open_file(&r, full, err, sizeof err)) {
    free(full);
    return s->host->error(s->st, "%s %s", *atlas ? "atlas" : "mask", err);
  }
  for (int i = 0; i < 3; i++)
    s->dims[i] = r.h.dim[i + 1];
  size_t n = r.h.nvox;
  float *v = malloc(n * sizeof *v);
  s->lab = malloc(n * sizeof *s->lab);
  int32_t *uniq = malloc(n * sizeof *uniq);
  int rc = 0;
  if (!v || !s->lab || !uniq)
    rc = s->host->error(s->st, "out of memory");
  else if (nifti_read_volumes_c(&r, 1, NULL, n, v, n, err, sizeof err))
    rc = s->host->error(s->st, "%s", err);
  nifti_close(&r);
  size_t nu = 0;
  for (size_t i = 0; !rc && i < n; i++) {
    int32_t l = isfinite(v[i]) ? (int32_t)lrintf(v[i]) : 0;
    if (!*atlas) l = v[i] != 0 && isfinite(v[i]) ? 1 : 0;
    s->lab[i] = l;
    if (l > 0) uniq[nu++] = l;
  }
  if (!rc) {
    qsort(uniq, nu, sizeof *uniq, cmp_i32);
    size_t k = 0;
    for (size_t i = 0; i < nu; i++)
      if (!k || uniq[i] != uniq[k - 1]) uniq[k++] = uniq[i];
    nu = k;
    size_t want = myelin_param_len(p, "labels");
    s->nr = want ? want : nu;
    s->r = calloc(s->nr ? s->nr : 1, sizeof *s->r);
    if (!s->r) rc = s->host->error(s->st, "out of memory");
    for (size_t i = 0; !rc && i < s->nr; i++) {
      s->r[i].label = want ? (int32_t)myelin_param_int_at(p, "labels", i) : uniq[i];
      if (!bsearch(&s->r[i].label, uniq, nu, sizeof *uniq, cmp_i32))
        rc = s->host->error(s->st, "%s: label %d is not in the image", full, (int)s->r[i].label);
    }
    if (!rc && s->nr == 0) rc = s->host->error(s->st, "%s: no voxel > 0: no region", full);
    for (size_t i = 0; !rc && i < n; i++) {
      int32_t l = s->lab[i], idx = -1;
      for (size_t k2 = 0; k2 < s->nr && l > 0; k2++)
        if (s->r[k2].label == l) idx = (int32_t)k2;
      s->lab[i] = idx;
    }
  }
  free(v);
  free(uniq);
  free(full);
  return rc;
}

/* Solves (A + ridge) x = b by Gauss-Jordan with partial pivoting (n <= 8). */
static void solve(int n, double A[NREG][NREG], const double *b, double *x) {
  double M[NREG][NREG + 1], tr = 0;
  for (int i = 0; i < n; i++)
    tr += A[i][i];
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < n; j++)
      M[i][j] = A[i][j] + (i == j ? 1e-9 * (tr / n + 1) : 0);
    M[i][n] = b[i];
  }
  for (int c = 0; c < n; c++) {
    int p = c;
    for (int r = c + 1; r < n; r++)
      if (fabs(M[r][c]) > fabs(M[p][c])) p = r;
    for (int j = 0; j <= n; j++) {
      double t = M[p][j];
      M[p][j] = M[c][j];
      M[c][j] = t;
    }
    double piv = M[c][c];
    if (piv == 0) {
      x[c] = 0;
      continue;
    }
    for (int j = 0; j <= n; j++)
      M[c][j] /= piv;
    for (int r = 0; r < n; r++)
      if (r != c) {
        double f = M[r][c];
        for (int j = 0; j <= n; j++)
          M[r][j] -= f * M[c][j];
      }
  }
  for (int i = 0; i < n; i++)
    x[i] = M[i][n];
}

static int roi_process(void *state, int port, myelin_msg *m) {
  (void)port;
  roi_state *s = state;
  myelin_tensor x, vox;
  myelin_obj g = myelin_msg_get(m, "geometry"), d = myelin_obj_get(g, "dims");
  if (myelin_msg_tensor(m, "data", &x) || x.dtype != MYELIN_F4 || x.ndim != 1)
    return s->host->error(s->st, "volume message without data <f4 [V]");
  if (myelin_obj_tensor(myelin_obj_get(g, "voxels"), &vox) || vox.dtype != MYELIN_U4 ||
      vox.count != x.count || myelin_obj_len(d) != 3)
    return s->host->error(s->st, "volume message: roi needs geometry dims and voxels (voxel data)");
  for (size_t i = 0; i < 3; i++) {
    int64_t di;
    if (myelin_obj_int(myelin_obj_at(d, i), &di) || di != s->dims[i])
      return s->host->error(s->st, "volume grid differs from the mask/atlas grid (%lldx%lldx%lld)",
                            (long long)s->dims[0], (long long)s->dims[1], (long long)s->dims[2]);
  }
  if (!s->vreg || s->V != x.count) {
    free(s->vreg);
    s->V = x.count;
    s->vreg = malloc((s->V ? s->V : 1) * sizeof *s->vreg);
    if (!s->vreg) return s->host->error(s->st, "out of memory");
    size_t N = (size_t)(s->dims[0] * s->dims[1] * s->dims[2]);
    const uint32_t *vi = vox.data;
    for (size_t i = 0; i < s->V; i++)
      s->vreg[i] = vi[i] < N ? s->lab[vi[i]] : -1;
  }
  memset(s->sum, 0, s->nr * sizeof *s->sum);
  memset(s->cnt, 0, s->nr * sizeof *s->cnt);
  const float *in = x.data;
  for (size_t i = 0; i < s->V; i++)
    if (s->vreg[i] >= 0 && isfinite(in[i])) {
      s->sum[s->vreg[i]] += in[i];
      s->cnt[s->vreg[i]]++;
    }
  double reg[NREG] = {1, (double)s->t, 0, 0, 0, 0, 0, 0};
  int nreg = s->detrend == DT_GLM ? 8 : s->detrend == DT_LINEAR ? 2 : 1;
  if (s->detrend == DT_GLM) {
    myelin_tensor mo;
    if (myelin_msg_tensor(m, "motion", &mo) || mo.count != 6 || mo.dtype != MYELIN_F8)
      return s->host->error(s->st, "detrend: glm needs the motion <f8 [6] of realign on each volume");
    memcpy(reg + 2, mo.data, 6 * sizeof(double));
  }
  for (size_t k = 0; k < s->nr; k++) {
    roi_region *R = &s->r[k];
    double y = s->cnt[k] ? s->sum[k] / (double)s->cnt[k] : NAN;
    s->raw[k] = (float)y;
    if (!isfinite(y)) {
      s->psc[k] = NAN;
      continue;
    }
    if ((int64_t)R->base_n < s->baseline || R->base_n == 0) {
      R->base_sum += y;
      R->base_n++;
    }
    double base = R->base_sum / (double)R->base_n, fit = base;
    if (nreg > 1) {
      for (int i = 0; i < nreg; i++) {
        R->xty[i] += reg[i] * y;
        for (int j = 0; j < nreg; j++)
          R->xtx[i][j] += reg[i] * reg[j];
      }
      double beta[NREG];
      solve(nreg, R->xtx, R->xty, beta);
      fit = 0;
      for (int i = 0; i < nreg; i++)
        fit += beta[i] * reg[i];
    }
    s->psc[k] = base != 0 ? (float)(100.0 * (y - fit) / base) : NAN;
  }
  s->t++;
  myelin_builder *b = myelin_builder_new("tensor");
  if (!b) return s->host->error(s->st, "out of memory");
  static const char *const keys[] = {"seq", "t", "index", "subject", "task", "run", "fd", NULL};
  myelin_build_fields(b, m, keys);
  myelin_build_str(b, "name", "roi_psc");
  const int64_t shape[1] = {(int64_t)s->nr};
  myelin_build_tensor_copy(b, "data", MYELIN_F4, 1, shape, s->psc);
  myelin_build_tensor_copy(b, "raw", MYELIN_F4, 1, shape, s->raw);
  myelin_build_array_begin(b, "labels");
  for (size_t k = 0; k < s->nr; k++) {
    char name[24];
    snprintf(name, sizeof name, "%d", (int)s->r[k].label);
    myelin_build_str(b, NULL, name);
  }
  myelin_build_array_end(b);
  myelin_msg *out = myelin_builder_finish(b);
  if (!out) return s->host->error(s->st, "cannot build message (out of memory)");
  int rc = s->host->emit(s->st, 0, out);
  return rc == MYELIN_ESTOP ? 0 : rc;
}

static void roi_fini(void *state);

static int roi_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  roi_state *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  const char *dt = myelin_param_str(p, "detrend");
  s->detrend = !strcmp(dt, "glm") ? DT_GLM : !strcmp(dt, "linear") ? DT_LINEAR : DT_NONE;
  s->baseline = myelin_param_int(p, "baseline");
  int rc = load_regions(s, p);
  if (!rc) {
    s->sum = calloc(s->nr, sizeof *s->sum);
    s->cnt = calloc(s->nr, sizeof *s->cnt);
    s->psc = calloc(s->nr, sizeof *s->psc);
    s->raw = calloc(s->nr, sizeof *s->raw);
    if (!s->sum || !s->cnt || !s->psc || !s->raw) rc = MYELIN_ENOMEM;
  }
  if (rc) {
    roi_fini(s);
    return rc;
  }
  *state = s;
  return 0;
}

static void roi_fini(void *state) {
  roi_state *s = state;
  if (!s) return;
  free(s->lab);
  free(s->r);
  free(s->vreg);
  free(s->sum);
  free(s->cnt);
  free(s->psc);
  free(s->raw);
  free(s);
}

static int roi_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  int rc = 0;
  if (!*myelin_param_str(p, "mask") == !*myelin_param_str(p, "atlas"))
    rc = myelin_validate_error(ctx, "mask", "set exactly one of mask and atlas");
  if (myelin_param_len(p, "labels") && !*myelin_param_str(p, "atlas"))
    rc = myelin_validate_error(ctx, "labels", "labels select atlas regions; set atlas");
  myelin_validate_set_output_kinds(ctx, "out", "tensor");
  return rc;
}

static const myelin_param_def roi_params[] = {
    {.name = "mask",
     .type = MYELIN_PARAM_INPUT_PATH,
     .def = "",
     .doc = "A NIfTI mask on the volumes' grid: its non-zero voxels form one region."},
    {.name = "atlas",
     .type = MYELIN_PARAM_INPUT_PATH,
     .def = "",
     .doc = "A NIfTI label image on the volumes' grid: one region per label."},
    {.name = "labels",
     .type = MYELIN_PARAM_INT_LIST,
     .def = "[]",
     .doc = "Atlas labels to report, in this order (empty = every label > 0, ascending)."},
    {.name = "detrend",
     .type = MYELIN_PARAM_ENUM,
     .def = "linear",
     .choices = "none|linear|glm",
     .doc = "Causal model of the ROI mean: none (the baseline), linear ([1, t]) or glm ([1, t, motion]); "
            "refitted on all volumes so far at each TR."},
    {.name = "baseline",
     .type = MYELIN_PARAM_INT,
     .def = "10",
     .has_range = 1,
     .min = 1,
     .max = 1000000,
     .unit = "volumes",
     .doc = "Percent signal change is relative to the mean of the first this many volumes."},
    {0}};
static const myelin_port_def roi_inputs[] = {
    {.name = "in", .kinds = "volume", .doc = "volumes (with motion for detrend: glm)"}, {0}};
static const myelin_port_def roi_outputs[] = {
    {.name = "out",
     .kinds = "tensor",
     .doc =
         "tensor {name: roi_psc, data <f4 [R] (percent signal change), raw <f4 [R], labels, t, index, ...}"},
    {0}};

static const myelin_plugin_desc roi_desc = {
    MYELIN_DESC_HEADER,
    .name = "roi",
    .version = "1.0.0",
    .summary = "per-TR ROI mean, causal detrend / GLM with motion regressors, percent signal change",
    .params = roi_params,
    .inputs = roi_inputs,
    .outputs = roi_outputs,
    .validate = roi_validate,
    .init = roi_init,
    .process = roi_process,
    .fini = roi_fini,
};

MYELIN_PLUGIN(roi_desc)
