/*
 * realign — online rigid-body motion correction of `volume` messages.
 *
 * The reference is the first volume of the stream, or a NIfTI file on the
 * same grid (`reference`). Each volume is scattered onto its full grid
 * (geometry.dims/voxels; voxels not listed are 0), aligned to the reference
 * by realign_kernels.c (least squares, Gauss-Newton, inverse compositional;
 * the previous volume's estimate is the starting point, since motion is
 * continuous), resampled on the reference grid (trilinear) and emitted with
 * the same fields plus `motion` <f8 [6] (tx, ty, tz mm, rx, ry, rz degrees;
 * the convention of realign_kernels.h) and `fd` (Power et al. 2012, 50 mm
 * sphere, against the previous volume). With `censor` > 0 a volume whose FD
 * exceeds it is dropped (counter `censored`). Causal: a volume never waits.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "myelin/myelin.h"
#include "nifti.h"
#include "realign_kernels.h"

typedef struct rs {
  const myelin_host *host;
  myelin_stage *st;
  double censor, tol;
  int max_iter;
  int have_ref;
  rg_ref ref;
  int64_t dims[3];
  size_t nvox; /* dims product */
  double T[4][4];
  double prev[6];
  int have_prev;
  uint64_t seen;
  float *full, *out; /* one full grid each */
  char *ref_path;
} rs;

static int rs_error_geometry(rs *s, const char *what) {
  return s->host->error(s->st,
                        "volume message: %s (realign needs voxel volumes with geometry dims, affine, "
                        "voxels)",
                        what);
}

/* Grid of a message: dims, affine; 0 or an error. */
static int msg_grid(rs *s, const myelin_msg *m, int64_t dims[3], double A[4][4], myelin_tensor *vox) {
  myelin_obj g = myelin_msg_get(m, "geometry");
  myelin_obj d = myelin_obj_get(g, "dims");
  if (myelin_obj_len(d) != 3) return rs_error_geometry(s, "no geometry.dims [x, y, z]");
  for (size_t i = 0; i < 3; i++)
    if (myelin_obj_int(myelin_obj_at(d, i), &dims[i]) || dims[i] < 1) return rs_error_geometry(s, "bad dims");
  myelin_tensor a;
  if (myelin_obj_tensor(myelin_obj_get(g, "affine"), &a) || a.dtype != MYELIN_F8 || a.count != 16)
    return rs_error_geometry(s, "no geometry.affine <f8 [4, 4]");
  memcpy(A, a.data, sizeof(double) * 16);
  if (myelin_obj_tensor(myelin_obj_get(g, "voxels"), vox) || vox->dtype != MYELIN_U4)
    return rs_error_geometry(s, "no geometry.voxels (parcel data cannot be realigned)");
  return 0;
}

static int load_reference(rs *s, const int64_t dims[3]) {
  char err[768];
  nifti_reader r;
  if (nifti_open_file(&r, s->ref_path, err, sizeof err)) return s->host->error(s->st, "reference %s", err);
  int64_t rd[3] = {r.h.dim[1], r.h.dim[2], r.h.dim[3]};
  int rc = 0;
  if (rd[0] != dims[0] || rd[1] != dims[1] || rd[2] != dims[2])
    rc = s->host->error(s->st, "reference %s: grid %lldx%lldx%lld, the volumes' is %lldx%lldx%lld",
                        s->ref_path, (long long)rd[0], (long long)rd[1], (long long)rd[2], (long long)dims[0],
                        (long long)dims[1], (long long)dims[2]);
  else if (nifti_read_volumes_c(&r, 1, NULL, s->nvox, s->out, s->nvox, err, sizeof err))
    rc = s->host->error(s->st, "reference %s", err);
  double A[4][4];
  nifti_affine(&r.h, A);
  nifti_close(&r);
  if (!rc && rg_ref_init(&s->ref, s->out, dims, A))
    rc = s->host->error(s->st, "reference %s: too few voxels above the intensity threshold", s->ref_path);
  return rc;
}

/* The first volume fixes the grid. */
static int setup_grid(rs *s, const int64_t dims[3]) {
  memcpy(s->dims, dims, sizeof s->dims);
  s->nvox = (size_t)(dims[0] * dims[1] * dims[2]);
  s->full = calloc(s->nvox ? s->nvox : 1, sizeof *s->full);
  s->out = calloc(s->nvox ? s->nvox : 1, sizeof *s->out);
  if (!s->full || !s->out) return s->host->error(s->st, "out of memory for a %zu-voxel grid", s->nvox);
  memset(s->T, 0, sizeof s->T);
  for (int i = 0; i < 4; i++)
    s->T[i][i] = 1;
  return 0;
}

static int rs_process(void *state, int port, myelin_msg *m) {
  (void)port;
  rs *s = state;
  myelin_tensor x, vox;
  int64_t dims[3];
  double A[4][4];
  if (myelin_msg_tensor(m, "data", &x) || x.dtype != MYELIN_F4 || x.ndim != 1)
    return s->host->error(s->st, "volume message without data <f4 [V]");
  if (msg_grid(s, m, dims, A, &vox)) return MYELIN_EINVAL;
  if (vox.count != x.count) return rs_error_geometry(s, "geometry.voxels and data differ in length");
  size_t N = (size_t)(dims[0] * dims[1] * dims[2]);
  if (!s->full && setup_grid(s, dims)) return MYELIN_ENOMEM;
  if (dims[0] != s->dims[0] || dims[1] != s->dims[1] || dims[2] != s->dims[2])
    return s->host->error(s->st, "volume grid %lldx%lldx%lld differs from the reference's",
                          (long long)dims[0], (long long)dims[1], (long long)dims[2]);
  const float *in = x.data;
  const uint32_t *vi = vox.data;
  memset(s->full, 0, N * sizeof *s->full);
  for (size_t i = 0; i < x.count; i++)
    if (vi[i] < N) s->full[vi[i]] = isfinite(in[i]) ? in[i] : 0;
  if (!s->have_ref) {
    int rc = 0;
    if (s->ref_path)
      rc = load_reference(s, dims);
    else if (rg_ref_init(&s->ref, s->full, dims, A))
      rc = s->host->error(s->st, "first volume: too few voxels above the intensity threshold to align to");
    if (rc) return rc;
    s->have_ref = 1;
  }
  double p[6] = {0, 0, 0, 0, 0, 0};
  int first = !s->have_prev && !s->ref_path;
  if (!first) {
    double keep[4][4];
    memcpy(keep, s->T, sizeof keep);
    uint64_t coarse = s->ref.coarse_runs;
    int it = rg_estimate(&s->ref, s->full, s->T, s->max_iter, s->tol);
    if (s->ref.coarse_runs != coarse) s->host->counter_add(s->st, "coarse", 1);
    s->host->log(s->st, MYELIN_LOG_DEBUG, "volume %llu: %d Gauss-Newton iterations%s",
                 (unsigned long long)s->seen, it, s->ref.coarse_runs != coarse ? " (coarse-to-fine)" : "");
    rg_params(s->T, s->ref.c, p);
    int bad = it < 0;
    for (int i = 0; i < 6; i++)
      bad |= !isfinite(p[i]);
    if (bad) { /* one odd volume must not end a live session */
      memcpy(s->T, keep, sizeof keep);
      rg_params(s->T, s->ref.c, p);
      s->host->log(s->st, MYELIN_LOG_WARN,
                   "volume %llu: realignment did not converge; the previous estimate is "
                   "used",
                   (unsigned long long)s->seen);
      s->host->counter_add(s->st, "failed", 1);
    }
    rg_resample(s->full, s->dims, s->ref.A, s->ref.Ainv, s->T, s->out);
  } else {
    memcpy(s->out, s->full, N * sizeof *s->out);
  }
  s->seen++;
  double fd = s->have_prev ? rg_fd(s->prev, p) : 0;
  memcpy(s->prev, p, sizeof p);
  s->have_prev = 1;
  s->host->counter_add(s->st, "volumes", 1);
  if (s->censor > 0 && fd > s->censor) {
    s->host->counter_add(s->st, "censored", 1);
    return 0;
  }
  myelin_builder *b = myelin_builder_new("volume");
  if (!b) return s->host->error(s->st, "out of memory");
  static const char *const keys[] = {"seq",   "t",     "index", "tr",          "subject",  "task", "run",
                                     "label", "split", "epoch", "slice_times", "geometry", NULL};
  myelin_build_fields(b, m, keys);
  const int64_t shape[1] = {(int64_t)x.count};
  float *o = myelin_build_tensor(b, "data", MYELIN_F4, 1, shape);
  if (o)
    for (size_t i = 0; i < x.count; i++)
      o[i] = vi[i] < N ? s->out[vi[i]] : 0;
  const int64_t ms[1] = {6};
  myelin_build_tensor_copy(b, "motion", MYELIN_F8, 1, ms, p);
  myelin_build_float(b, "fd", fd);
  myelin_msg *out = myelin_builder_finish(b);
  if (!out) return s->host->error(s->st, "cannot build message (out of memory)");
  int rc = s->host->emit(s->st, 0, out);
  return rc == MYELIN_ESTOP ? 0 : rc;
}

static int rs_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  rs *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  s->censor = myelin_param_float(p, "censor");
  s->max_iter = (int)myelin_param_int(p, "max_iter");
  s->tol = myelin_param_float(p, "tol");
  const char *ref = myelin_param_str(p, "reference");
  if (ref && *ref && strcmp(ref, "first") != 0) {
    s->ref_path = myelin_input_path(ref, host->pipeline_dir ? host->pipeline_dir(st) : NULL);
    if (!s->ref_path) {
      free(s);
      return MYELIN_ENOMEM;
    }
  }
  *state = s;
  return 0;
}

static void rs_fini(void *state) {
  rs *s = state;
  if (!s) return;
  if (s->have_ref) rg_ref_free(&s->ref);
  free(s->full);
  free(s->out);
  free(s->ref_path);
  free(s);
}

static int rs_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  (void)p;
  myelin_validate_set_output_kinds(ctx, "out", "volume");
  return 0;
}

static const myelin_param_def rs_params[] = {
    {.name = "reference",
     .type = MYELIN_PARAM_STRING,
     .def = "first",
     .doc = "first (the stream's first volume) or a 3-D NIfTI file on the volumes' grid."},
    {.name = "censor",
     .type = MYELIN_PARAM_FLOAT,
     .def = "0",
     .has_range = 1,
     .min = 0,
     .max = 1000,
     .unit = "mm",
     .doc = "Drop volumes whose framewise displacement exceeds this (0 = keep all)."},
    {.name = "max_iter",
     .type = MYELIN_PARAM_INT,
     .def = "30",
     .has_range = 1,
     .min = 1,
     .max = 1000,
     .doc = "Gauss-Newton iterations per resolution level."},
    {.name = "tol",
     .type = MYELIN_PARAM_FLOAT,
     .def = "0.0001",
     .has_range = 1,
     .min = 1e-9,
     .max = 10,
     .unit = "mm",
     .doc = "Stop when an update moves less than this (translation + 50 mm x rotation)."},
    {0}};
static const myelin_port_def rs_inputs[] = {
    {.name = "in", .kinds = "volume", .doc = "volumes with geometry dims, affine and voxels"}, {0}};
static const myelin_port_def rs_outputs[] = {{.name = "out",
                                              .kinds = "volume",
                                              .doc = "the volume resampled onto the reference, with motion "
                                                     "<f8 [6] (tx, ty, tz mm, rx, ry, rz deg) and fd "
                                                     "(mm)"},
                                             {0}};

static const myelin_plugin_desc rs_desc = {
    MYELIN_DESC_HEADER,
    .name = "realign",
    .version = "1.0.0",
    .summary =
        "online rigid-body motion correction (6 DOF, least squares) with motion parameters, FD, censoring",
    .doc =
        "T(p) = R (p - c) + c + t maps a reference point to the same tissue in the volume; c = grid center "
        "(world mm), R = Rx(rx) Ry(ry) Rz(rz), right-handed about RAS axes. fd: Power et al. 2012 (50 mm). "
        "See plugins/realign/README.md.",
    .params = rs_params,
    .inputs = rs_inputs,
    .outputs = rs_outputs,
    .validate = rs_validate,
    .init = rs_init,
    .process = rs_process,
    .fini = rs_fini,
};

MYELIN_PLUGIN(rs_desc)
