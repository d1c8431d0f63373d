/*
 * smooth — per-TR Gaussian smoothing of `volume` messages (FWHM in mm).
 *
 * Each volume is scattered onto its full grid (geometry.dims/voxels; voxels
 * outside the list are 0 and, with `masked: true`, also excluded from the
 * averages so a brain mask's edge does not darken), filtered with a
 * separable Gaussian whose sigma per axis is FWHM / (2 sqrt(2 ln 2)) divided
 * by that axis' voxel size (the affine's column norms), truncated at
 * 3 sigma and renormalized at the grid's border (realign_kernels.c's
 * rg_smooth), and gathered back to the same voxels. Causal and stateless:
 * one volume in, one out; other fields pass through.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/myelin.h"
#include "realign_kernels.h"

typedef struct sm {
  const myelin_host *host;
  myelin_stage *st;
  double fwhm;
  int masked;
  float *full, *weight, *scratch;
  size_t cap;
} sm;

static int sm_process(void *state, int port, myelin_msg *m) {
  (void)port;
  sm *s = state;
  myelin_tensor x, vox, a;
  myelin_obj g = myelin_msg_get(m, "geometry"), d = myelin_obj_get(g, "dims");
  int64_t dims[3];
  if (myelin_msg_tensor(m, "data", &x) || x.dtype != MYELIN_F4 || x.ndim != 1)
    return s->host->error(s->st, "volume message without data <f4 [V]");
  if (myelin_obj_len(d) != 3 || myelin_obj_tensor(myelin_obj_get(g, "affine"), &a) || a.dtype != MYELIN_F8 ||
      a.count != 16 || myelin_obj_tensor(myelin_obj_get(g, "voxels"), &vox) || vox.dtype != MYELIN_U4 ||
      vox.count != x.count)
    return s->host->error(s->st,
                          "volume message: smooth needs geometry dims, affine and voxels (voxel data)");
  for (size_t i = 0; i < 3; i++)
    if (myelin_obj_int(myelin_obj_at(d, i), &dims[i]) || dims[i] < 1)
      return s->host->error(s->st, "volume message: bad geometry.dims");
  size_t N = (size_t)(dims[0] * dims[1] * dims[2]);
  if (N > s->cap) {
    free(s->full);
    free(s->weight);
    free(s->scratch);
    s->full = malloc(N * sizeof *s->full);
    s->weight = malloc(N * sizeof *s->weight);
    s->scratch = malloc(N * sizeof *s->scratch);
    s->cap = s->full && s->weight && s->scratch ? N : 0;
    if (!s->cap) return s->host->error(s->st, "out of memory");
  }
  const double *A = a.data;
  double sigma[3];
  for (int c = 0; c < 3; c++) {
    double vs = sqrt(A[c] * A[c] + A[4 + c] * A[4 + c] + A[8 + c] * A[8 + c]);
    sigma[c] = vs > 0 ? s->fwhm / (2 * sqrt(2 * log(2))) / vs : 0;
  }
  const float *in = x.data;
  const uint32_t *vi = vox.data;
  memset(s->full, 0, N * sizeof *s->full);
  for (size_t i = 0; i < x.count; i++)
    if (vi[i] < N) s->full[vi[i]] = isfinite(in[i]) ? in[i] : 0;
  rg_smooth(s->full, dims, sigma, s->scratch);
  if (s->masked && x.count < N) { /* divide by the smoothed mask */
    memset(s->weight, 0, N * sizeof *s->weight);
    for (size_t i = 0; i < x.count; i++)
      if (vi[i] < N) s->weight[vi[i]] = 1;
    rg_smooth(s->weight, dims, sigma, s->scratch);
  }
  myelin_builder *b = myelin_builder_new("volume");
  if (!b) return s->host->error(s->st, "out of memory");
  static const char *const skip_data[] = {"seq",    "t",   "index",       "tr",       "subject",
                                          "task",   "run", "label",       "split",    "epoch",
                                          "motion", "fd",  "slice_times", "geometry", NULL};
  myelin_build_fields(b, m, skip_data);
  const int64_t shape[1] = {(int64_t)x.count};
  float *o = myelin_build_tensor(b, "data", MYELIN_F4, 1, shape);
  if (o)
    for (size_t i = 0; i < x.count; i++) {
      float w = s->masked && x.count < N ? s->weight[vi[i]] : 1;
      o[i] = vi[i] < N && w > 0 ? s->full[vi[i]] / w : 0;
    }
  myelin_msg *out = myelin_builder_finish(b);
  if (!out) return s->host->error(s->st, "cannot build message (out of memory)");
  int rc = s->host->emit(s->st, 0, out);
  return rc == MYELIN_ESTOP ? 0 : rc;
}

static int sm_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  sm *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  s->fwhm = myelin_param_float(p, "fwhm");
  s->masked = myelin_param_bool(p, "masked");
  *state = s;
  return 0;
}

static void sm_fini(void *state) {
  sm *s = state;
  if (!s) return;
  free(s->full);
  free(s->weight);
  free(s->scratch);
  free(s);
}

static int sm_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  (void)p;
  myelin_validate_set_output_kinds(ctx, "out", "volume");
  return 0;
}

static const myelin_param_def sm_params[] = {
    {.name = "fwhm",
     .type = MYELIN_PARAM_FLOAT,
     .def = "6",
     .has_range = 1,
     .min = 0,
     .max = 100,
     .unit = "mm",
     .doc = "Full width at half maximum of the Gaussian kernel (0 = no smoothing)."},
    {.name = "masked",
     .type = MYELIN_PARAM_BOOL,
     .def = "true",
     .doc = "With a mask (geometry.voxels a subset), average only over masked voxels (divide by the "
            "smoothed mask) instead of letting the zeros outside darken the edge."},
    {0}};
static const myelin_port_def sm_inputs[] = {
    {.name = "in", .kinds = "volume", .doc = "volumes with geometry dims, affine and voxels"}, {0}};
static const myelin_port_def sm_outputs[] = {
    {.name = "out", .kinds = "volume", .doc = "the same volumes, smoothed"}, {0}};

static const myelin_plugin_desc sm_desc = {
    MYELIN_DESC_HEADER,
    .name = "smooth",
    .version = "1.0.0",
    .summary = "per-TR Gaussian smoothing of volumes (FWHM in mm, anisotropic voxels handled)",
    .params = sm_params,
    .inputs = sm_inputs,
    .outputs = sm_outputs,
    .validate = sm_validate,
    .init = sm_init,
    .process = sm_process,
    .fini = sm_fini,
};

MYELIN_PLUGIN(sm_desc)
