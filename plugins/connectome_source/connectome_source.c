/*
 * connectome_source — reads a connectome matrix and emits it once as a
 * `tensor` {data <f8 [N, N], name, labels?}: what info_content's
 * `connectome` port takes.
 *
 * Formats, by extension: CIFTI-2 .pconn.nii / .dconn.nii (cifti.c; labels =
 * the parcel names of a .pconn), NumPy .npy (myelin/npy.h), CSV / TSV (one
 * row per line, comma, tab or space separated; a first line that is not
 * numbers is a header), and MATLAB .mat through libmatio — v5 (and v4) and
 * v7.3 (HDF5) files alike. A .mat file holds several variables: `variable`
 * names one, else the first square 2-D real numeric one is used. MATLAB
 * stores matrices column-major: element (i, j) is read where MATLAB has
 * A(i+1, j+1), as scipy.io.loadmat shows it.
 */
#include <ctype.h>
#include <errno.h>
#include <matio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cifti.h"
#include "myelin/myelin.h"
#include "myelin/npy.h"

typedef struct cn_state {
  const myelin_host *host;
  myelin_stage *st;
  char *path;
  char variable[128];
} cn_state;

typedef struct matrix {
  size_t rows, cols;
  double *data; /* C order */
  char **labels;
  size_t nlabels;
} matrix;

static int ends_with(const char *s, const char *suf) {
  size_t n = strlen(s), k = strlen(suf);
  return n >= k && !strcmp(s + n - k, suf);
}

static void matrix_free(matrix *m) {
  for (size_t i = 0; i < m->nlabels; i++)
    free(m->labels[i]);
  free(m->labels);
  free(m->data);
  memset(m, 0, sizeof *m);
}

static int alloc_matrix(cn_state *s, matrix *m, size_t rows, size_t cols) {
  m->rows = rows;
  m->cols = cols;
  m->data = malloc((rows * cols > 0 ? rows * cols : 1) * sizeof *m->data);
  return m->data ? 0 : s->host->error(s->st, "%s: out of memory for %zu x %zu", s->path, rows, cols);
}

static int read_cifti(cn_state *s, matrix *m) {
  char err[1024];
  cifti_file c;
  if (cifti_read_file(s->path, &c, err, sizeof err)) return s->host->error(s->st, "%s", err);
  int rc = 0;
  int t0 = c.axes[0].type, t1 = c.axes[1].type;
  if ((t0 != CIFTI_PARCELS && t0 != CIFTI_BRAIN_MODELS) || t0 != t1)
    rc = s->host->error(
        s->st, "%s: not a connectome: axes %s x %s (a .pconn/.dconn has parcels or brain models on both)",
        s->path, cifti_axis_type_name(t0), cifti_axis_type_name(t1));
  if (!rc) rc = alloc_matrix(s, m, c.rows, c.cols);
  for (size_t i = 0; !rc && i < c.rows * c.cols; i++)
    m->data[i] = c.data[i];
  if (!rc && t0 == CIFTI_PARCELS) {
    m->labels = calloc(c.rows ? c.rows : 1, sizeof *m->labels);
    for (size_t i = 0; m->labels && i < c.rows; i++)
      if ((m->labels[i] = strdup(c.axes[0].parcels[i].name))) m->nlabels++;
    if (!m->labels || m->nlabels != c.rows) rc = s->host->error(s->st, "out of memory");
  }
  cifti_free(&c);
  return rc;
}

static int read_npy(cn_state *s, matrix *m) {
  char err[1024];
  myelin_array a;
  if (myelin_npy_read(s->path, &a, err, sizeof err)) return s->host->error(s->st, "%s", err);
  int rc = 0;
  if (a.ndim != 2)
    rc = s->host->error(s->st, "%s: a connectome is 2-D, the array has %d dimensions", s->path, a.ndim);
  if (!rc) rc = alloc_matrix(s, m, (size_t)a.shape[0], (size_t)a.shape[1]);
  myelin_tensor t = {.dtype = a.dtype, .ndim = a.ndim, .count = a.count, .data = a.data};
  for (size_t i = 0; !rc && i < a.count; i++) {
    switch (t.dtype) {
    case MYELIN_F8:
      m->data[i] = ((const double *)a.data)[i];
      break;
    case MYELIN_F4:
      m->data[i] = ((const float *)a.data)[i];
      break;
    case MYELIN_I4:
      m->data[i] = ((const int32_t *)a.data)[i];
      break;
    case MYELIN_I8:
      m->data[i] = (double)((const int64_t *)a.data)[i];
      break;
    default:
      rc = s->host->error(s->st, "%s: dtype %s is not a float or int32/int64 connectome", s->path,
                          myelin_dtype_name(a.dtype));
    }
  }
  myelin_array_free(&a);
  return rc;
}

static int read_csv(cn_state *s, matrix *m) {
  FILE *f = fopen(s->path, "r");
  if (!f) return s->host->error(s->st, "%s: %s", s->path, strerror(errno));
  char *line = NULL;
  size_t cap = 0, n = 0, lineno = 0, rows = 0, cols = 0, dcap = 0;
  int rc = 0;
  while (!rc && getline(&line, &cap, f) > 0) {
    lineno++;
    size_t k = 0;
    char *p = line;
    for (;;) {
      while (*p == ' ' || *p == '\t' || *p == ',' || *p == ';')
        p++;
      if (!*p || *p == '\n' || *p == '\r') break;
      char *end;
      double v = strtod(p, &end);
      if (end == p) {
        if (lineno == 1 && rows == 0) break; /* a header line */
        rc = s->host->error(s->st, "%s:%zu: field %zu is not a number", s->path, lineno, k + 1);
        break;
      }
      if (n == dcap) {
        dcap = dcap ? 2 * dcap : 1024;
        double *nd = realloc(m->data, dcap * sizeof *nd);
        if (!nd) {
          rc = s->host->error(s->st, "out of memory");
          break;
        }
        m->data = nd;
      }
      m->data[n++] = v;
      k++;
      p = end;
    }
    if (rc || k == 0) continue;
    if (rows == 0)
      cols = k;
    else if (k != cols)
      rc = s->host->error(s->st, "%s:%zu: %zu fields, the first row has %zu", s->path, lineno, k, cols);
    rows++;
  }
  free(line);
  fclose(f);
  m->rows = rows;
  m->cols = cols;
  if (!rc && rows == 0) rc = s->host->error(s->st, "%s: no numbers", s->path);
  return rc;
}

/* A real numeric 2-D variable as doubles (column-major in the file). */
static int mat_to_matrix(cn_state *s, matvar_t *v, matrix *m) {
  if (v->rank != 2 || v->isComplex || !v->data)
    return s->host->error(s->st, "%s: variable '%s' is not a real 2-D matrix", s->path,
                          v->name ? v->name : "?");
  size_t r = v->dims[0], c = v->dims[1];
  if (alloc_matrix(s, m, r, c)) return MYELIN_ENOMEM;
  for (size_t j = 0; j < c; j++)
    for (size_t i = 0; i < r; i++) {
      size_t k = i + j * r;
      double x;
      switch (v->class_type) {
      case MAT_C_DOUBLE:
        x = ((const double *)v->data)[k];
        break;
      case MAT_C_SINGLE:
        x = ((const float *)v->data)[k];
        break;
      case MAT_C_INT32:
        x = ((const int32_t *)v->data)[k];
        break;
      case MAT_C_UINT8:
        x = ((const uint8_t *)v->data)[k];
        break;
      case MAT_C_INT16:
        x = ((const int16_t *)v->data)[k];
        break;
      case MAT_C_INT64:
        x = (double)((const int64_t *)v->data)[k];
        break;
      default:
        return s->host->error(s->st, "%s: variable '%s' has an unsupported MATLAB class %d", s->path, v->name,
                              (int)v->class_type);
      }
      m->data[i * c + j] = x;
    }
  return 0;
}

static int numeric_class(enum matio_classes c) {
  return c == MAT_C_DOUBLE || c == MAT_C_SINGLE || c == MAT_C_INT32 || c == MAT_C_UINT8 || c == MAT_C_INT16 ||
         c == MAT_C_INT64;
}

static int read_mat(cn_state *s, matrix *m) {
  mat_t *mat = Mat_Open(s->path, MAT_ACC_RDONLY);
  if (!mat)
    return s->host->error(s->st, "%s: not a MATLAB .mat file libmatio can open (v4, v5, v7.3)", s->path);
  char name[128] = "";
  if (s->variable[0]) {
    snprintf(name, sizeof name, "%s", s->variable);
  } else {
    matvar_t *info;
    while (!name[0] && (info = Mat_VarReadNextInfo(mat)) != NULL) {
      if (info->rank == 2 && info->dims[0] == info->dims[1] && info->dims[0] > 0 && !info->isComplex &&
          numeric_class(info->class_type) && info->name)
        snprintf(name, sizeof name, "%s", info->name);
      Mat_VarFree(info);
    }
  }
  int rc = 0;
  matvar_t *v = name[0] ? Mat_VarRead(mat, name) : NULL;
  if (!name[0])
    rc = s->host->error(s->st, "%s: no square real numeric 2-D variable; name one with `variable`", s->path);
  else if (!v)
    rc = s->host->error(s->st, "%s: no variable '%s'", s->path, name);
  else
    rc = mat_to_matrix(s, v, m);
  if (v) Mat_VarFree(v);
  Mat_Close(mat);
  return rc;
}

static int cn_start(void *state) {
  cn_state *s = state;
  matrix m;
  memset(&m, 0, sizeof m);
  const char *p = s->path;
  int rc = ends_with(p, ".pconn.nii") || ends_with(p, ".dconn.nii") ? read_cifti(s, &m)
           : ends_with(p, ".npy")                                   ? read_npy(s, &m)
           : ends_with(p, ".mat")                                   ? read_mat(s, &m)
                                                                    : read_csv(s, &m);
  if (!rc && m.rows != m.cols)
    rc = s->host->error(s->st, "%s: a connectome is square, this matrix is %zu x %zu", p, m.rows, m.cols);
  myelin_builder *b = rc ? NULL : myelin_builder_new("tensor");
  if (!rc && !b) rc = s->host->error(s->st, "out of memory");
  if (!rc) {
    const int64_t shape[2] = {(int64_t)m.rows, (int64_t)m.cols};
    myelin_build_tensor_copy(b, "data", MYELIN_F8, 2, shape, m.data);
    const char *base = strrchr(p, '/');
    myelin_build_str(b, "name", base ? base + 1 : p);
    if (m.nlabels) {
      myelin_build_array_begin(b, "labels");
      for (size_t i = 0; i < m.nlabels; i++)
        myelin_build_str(b, NULL, m.labels[i]);
      myelin_build_array_end(b);
    }
    myelin_msg *msg = myelin_builder_finish(b);
    rc = msg ? s->host->emit(s->st, 0, msg) : s->host->error(s->st, "out of memory");
  }
  matrix_free(&m);
  return rc;
}

static int cn_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  const char *path = myelin_param_str(p, "path");
  if (!path || !*path) return myelin_validate_error(ctx, "path", "path is required");
  return 0;
}

static int cn_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  cn_state *s = calloc(1, sizeof *s);
  if (!s) return MYELIN_ENOMEM;
  s->host = host;
  s->st = st;
  s->path =
      myelin_input_path(myelin_param_str(p, "path"), host->pipeline_dir ? host->pipeline_dir(st) : NULL);
  if (!s->path) {
    free(s);
    return MYELIN_ENOMEM;
  }
  snprintf(s->variable, sizeof s->variable, "%s", myelin_param_str(p, "variable"));
  *state = s;
  return 0;
}

static void cn_fini(void *state) {
  cn_state *s = state;
  if (!s) return;
  free(s->path);
  free(s);
}

static const myelin_param_def cn_params[] = {
    {.name = "path",
     .type = MYELIN_PARAM_INPUT_PATH,
     .def = "",
     .doc = "The connectome: .pconn.nii / .dconn.nii (CIFTI-2), .npy, .csv/.tsv/.txt, or MATLAB .mat (v5 or "
            "v7.3)."},
    {.name = "variable",
     .type = MYELIN_PARAM_STRING,
     .def = "''",
     .doc = ".mat files: the variable to read; empty = the first square real numeric 2-D one."},
    {0}};

static const myelin_port_def cn_outputs[] = {
    {.name = "out",
     .kinds = "tensor",
     .doc = "the connectome {data <f8 [N, N], name, labels? (parcel names)}"},
    {0}};

static const myelin_plugin_desc cn_desc = {
    MYELIN_DESC_HEADER,
    .name = "connectome_source",
    .version = "1.0.0",
    .summary = "read a connectome (.pconn/.dconn.nii, .npy, .csv, MATLAB .mat v5/v7.3) as one tensor [N, N]",
    .doc = "MATLAB files through libmatio; element (i, j) is MATLAB's A(i+1, j+1), as scipy.io.loadmat shows "
           "it.",
    .params = cn_params,
    .outputs = cn_outputs,
    .validate = cn_validate,
    .init = cn_init,
    .start = cn_start,
    .fini = cn_fini,
};

MYELIN_PLUGIN(cn_desc)
