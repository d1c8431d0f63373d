/*
 * cifti.c — CIFTI-2 reading and writing (see cifti.h).
 *
 * Reading: the file is mapped; nifti.c parses the NIfTI-2 header (CIFTI
 * intents allowed); the extensions between the header and vox_offset are
 * walked for ecode 32, whose XML libxml2 parses (xml_util.c) into the two
 * axes. The matrix (NIfTI dim[5] rows x dim[6] columns, stored column-major:
 * each column's rows contiguous) is converted to float32 in C order a block
 * of columns at a time: the block's columns are converted contiguously into
 * a small buffer that stays in cache, then written out row by row, so memory
 * is read and written about once.
 *
 * Writing: a NIfTI-2 header, one ecode-32 extension with the XML (written
 * with libxml2's xmlTextWriter), then the float32 matrix column-major.
 */
#include "cifti.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <libxml/xmlwriter.h>

#include "nifti.h"
#include "xml_util.h"

static int cfail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int cfail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

static int ends_with(const char *s, const char *suf) {
  size_t n = strlen(s), k = strlen(suf);
  return n >= k && !strcmp(s + n - k, suf);
}

int cifti_is_cifti_name(const char *p) {
  static const char *const ext[] = {
      ".dtseries.nii",    ".dscalar.nii",     ".dlabel.nii", ".ptseries.nii",   ".pscalar.nii",
      ".plabel.nii",      ".pconn.nii",       ".dconn.nii",  ".pdconn.nii",     ".dpconn.nii",
      ".pconnseries.nii", ".pconnscalar.nii", ".dfan.nii",   ".dfibersamp.nii", ".dfansamp.nii"};
  for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++) {
    char gz[32];
    snprintf(gz, sizeof gz, "%s.gz", ext[i]);
    if (ends_with(p, ext[i]) || ends_with(p, gz)) return 1;
  }
  return 0;
}

const char *cifti_axis_type_name(int type) {
  switch (type) {
  case CIFTI_BRAIN_MODELS:
    return "CIFTI_INDEX_TYPE_BRAIN_MODELS";
  case CIFTI_PARCELS:
    return "CIFTI_INDEX_TYPE_PARCELS";
  case CIFTI_SERIES:
    return "CIFTI_INDEX_TYPE_SERIES";
  case CIFTI_SCALARS:
    return "CIFTI_INDEX_TYPE_SCALARS";
  case CIFTI_LABELS:
    return "CIFTI_INDEX_TYPE_LABELS";
  default:
    return "unknown";
  }
}

/* ---- freeing ------------------------------------------------------------------ */

static void axis_free(cifti_axis *a) {
  for (size_t i = 0; i < a->nmodels; i++) {
    free(a->models[i].vertices);
    free(a->models[i].ijk);
  }
  free(a->models);
  for (size_t i = 0; i < a->nparcels; i++) {
    cifti_parcel *p = &a->parcels[i];
    free(p->name);
    free(p->ijk);
    for (size_t k = 0; k < p->nsurf; k++)
      free(p->surf[k].vertices);
    free(p->surf);
  }
  free(a->parcels);
  free(a->surfaces);
  if (a->maps && (a->type == CIFTI_SCALARS || a->type == CIFTI_LABELS))
    for (size_t i = 0; i < a->n; i++) {
      free(a->maps[i].name);
      for (size_t k = 0; k < a->maps[i].nlabels; k++)
        free(a->maps[i].labels[k].name);
      free(a->maps[i].labels);
    }
  free(a->maps);
  memset(a, 0, sizeof *a);
}

void cifti_free(cifti_file *c) {
  axis_free(&c->axes[0]);
  if (c->axes[1].type) axis_free(&c->axes[1]);
  free(c->data);
  memset(c, 0, sizeof *c);
}

/* ---- XML → axes ------------------------------------------------------------------ */

typedef struct pctx {
  const char *name;
  char *err;
  size_t errlen;
} pctx;

/* n whitespace-separated integers in [0, max] from an element's text. */
static int parse_ints(const pctx *P, const xmlNode *e, size_t n, int64_t max, int32_t *out,
                      const char *what) {
  char *t = xml_text(e, NULL);
  if (!t) return cfail(P->err, P->errlen, "%s: out of memory", P->name);
  char *p = t;
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (end == p || errno || v < 0 || v > max)
      rc = cfail(P->err, P->errlen, "%s: CIFTI %s: entry %zu of %zu is missing or not in 0..%lld", P->name,
                 what, i, n, (long long)max);
    out[i] = (int32_t)v;
    p = end;
  }
  while (!rc && isspace((unsigned char)*p))
    p++;
  if (!rc && *p) rc = cfail(P->err, P->errlen, "%s: CIFTI %s has more than %zu entries", P->name, what, n);
  free(t);
  return rc;
}

static int attr_size(const pctx *P, const xmlNode *e, const char *name, size_t *out, const char *elem) {
  char b[64], *end;
  if (xml_attr(e, name, b, sizeof b))
    return cfail(P->err, P->errlen, "%s: CIFTI <%s> has no %s attribute", P->name, elem, name);
  long long v = strtoll(b, &end, 10);
  if (end == b || *end || v < 0 || v > INT32_MAX)
    return cfail(P->err, P->errlen, "%s: CIFTI <%s> %s = '%s' is not a size", P->name, elem, name, b);
  *out = (size_t)v;
  return 0;
}

static int parse_volume(const pctx *P, const xmlNode *vol, cifti_axis *a) {
  char b[128];
  if (xml_attr(vol, "VolumeDimensions", b, sizeof b) ||
      sscanf(b, "%lld,%lld,%lld", (long long *)&a->vol_dims[0], (long long *)&a->vol_dims[1],
             (long long *)&a->vol_dims[2]) != 3 ||
      a->vol_dims[0] < 1 || a->vol_dims[1] < 1 || a->vol_dims[2] < 1 || a->vol_dims[0] > 65535 ||
      a->vol_dims[1] > 65535 || a->vol_dims[2] > 65535)
    return cfail(P->err, P->errlen, "%s: CIFTI <Volume> VolumeDimensions is missing or not three sizes",
                 P->name);
  const xmlNode *m = xml_child(vol, "TransformationMatrixVoxelIndicesIJKtoXYZ");
  if (!m)
    return cfail(P->err, P->errlen, "%s: CIFTI <Volume> has no TransformationMatrixVoxelIndicesIJKtoXYZ",
                 P->name);
  double scale = 1;
  if (!xml_attr(m, "MeterExponent", b, sizeof b)) scale = pow(10.0, strtod(b, NULL) + 3.0);
  char *t = xml_text(m, NULL);
  if (!t) return cfail(P->err, P->errlen, "%s: out of memory", P->name);
  char *p = t;
  int rc = 0;
  for (int i = 0; i < 16 && !rc; i++) {
    char *end;
    a->affine[i / 4][i % 4] = strtod(p, &end);
    if (end == p)
      rc = cfail(P->err, P->errlen, "%s: CIFTI volume transform has fewer than 16 numbers", P->name);
    p = end;
  }
  free(t);
  for (int i = 0; i < 3 && !rc; i++)
    for (int j = 0; j < 4; j++)
      a->affine[i][j] *= scale;
  a->has_volume = 1;
  return rc;
}

static int parse_brain_models(const pctx *P, const xmlNode *map, cifti_axis *a) {
  const xmlNode *vol = xml_child(map, "Volume");
  if (vol && parse_volume(P, vol, a)) return -1;
  size_t nm = 0;
  for (const xmlNode *c = map->children; c; c = c->next)
    nm += xml_is(c, "BrainModel");
  a->models = calloc(nm ? nm : 1, sizeof *a->models);
  if (!a->models) return cfail(P->err, P->errlen, "%s: out of memory", P->name);
  size_t next = 0;
  for (const xmlNode *c = map->children; c; c = c->next) {
    if (!xml_is(c, "BrainModel")) continue;
    cifti_model *m = &a->models[a->nmodels++];
    char type[64];
    if (attr_size(P, c, "IndexOffset", &m->offset, "BrainModel") ||
        attr_size(P, c, "IndexCount", &m->count, "BrainModel"))
      return -1;
    if (xml_attr(c, "BrainStructure", m->structure, sizeof m->structure))
      return cfail(P->err, P->errlen, "%s: CIFTI <BrainModel> %zu has no BrainStructure", P->name,
                   a->nmodels - 1);
    if (xml_attr(c, "ModelType", type, sizeof type) ||
        (strcmp(type, "CIFTI_MODEL_TYPE_SURFACE") && strcmp(type, "CIFTI_MODEL_TYPE_VOXELS")))
      return cfail(P->err, P->errlen, "%s: CIFTI <BrainModel> %s: ModelType is not SURFACE or VOXELS",
                   P->name, m->structure);
    if (m->offset != next)
      return cfail(P->err, P->errlen,
                   "%s: CIFTI <BrainModel> %s: IndexOffset %zu, expected %zu (models must tile "
                   "the axis in order)",
                   P->name, m->structure, m->offset, next);
    next += m->count;
    m->surface = !strcmp(type, "CIFTI_MODEL_TYPE_SURFACE");
    if (m->surface) {
      if (attr_size(P, c, "SurfaceNumberOfVertices", &m->nvert, "BrainModel")) return -1;
      if (m->count > m->nvert)
        return cfail(P->err, P->errlen,
                     "%s: CIFTI <BrainModel> %s: IndexCount %zu > SurfaceNumberOfVertices %zu", P->name,
                     m->structure, m->count, m->nvert);
      const xmlNode *vi = xml_child(c, "VertexIndices");
      m->vertices = malloc((m->count ? m->count : 1) * sizeof *m->vertices);
      if (!m->vertices) return cfail(P->err, P->errlen, "%s: out of memory", P->name);
      if (vi) {
        if (parse_ints(P, vi, m->count, (int64_t)m->nvert - 1, (int32_t *)m->vertices, "VertexIndices"))
          return -1;
      } else {
        if (m->count != m->nvert)
          return cfail(P->err, P->errlen, "%s: CIFTI <BrainModel> %s has no VertexIndices", P->name,
                       m->structure);
        for (size_t k = 0; k < m->count; k++)
          m->vertices[k] = (uint32_t)k;
      }
    } else {
      if (!a->has_volume)
        return cfail(P->err, P->errlen, "%s: CIFTI voxel <BrainModel> %s without a <Volume>", P->name,
                     m->structure);
      const xmlNode *ijk = xml_child(c, "VoxelIndicesIJK");
      if (!ijk)
        return cfail(P->err, P->errlen, "%s: CIFTI <BrainModel> %s has no VoxelIndicesIJK", P->name,
                     m->structure);
      if (m->count > SIZE_MAX / 3 / sizeof(int32_t) - 1)
        return cfail(P->err, P->errlen, "%s: IndexCount too large", P->name);
      m->ijk = malloc((m->count ? m->count : 1) * 3 * sizeof *m->ijk);
      if (!m->ijk) return cfail(P->err, P->errlen, "%s: out of memory", P->name);
      int64_t mx = a->vol_dims[0] > a->vol_dims[1] ? a->vol_dims[0] : a->vol_dims[1];
      if (a->vol_dims[2] > mx) mx = a->vol_dims[2];
      if (parse_ints(P, ijk, m->count * 3, mx - 1, m->ijk, "VoxelIndicesIJK")) return -1;
      for (size_t k = 0; k < m->count; k++)
        for (int d = 0; d < 3; d++)
          if (m->ijk[3 * k + (size_t)d] >= a->vol_dims[d])
            return cfail(P->err, P->errlen,
                         "%s: CIFTI <BrainModel> %s: voxel %zu is outside the %lldx%lldx%lld volume", P->name,
                         m->structure, k, (long long)a->vol_dims[0], (long long)a->vol_dims[1],
                         (long long)a->vol_dims[2]);
    }
  }
  a->n = next;
  return 0;
}

static int parse_parcels(const pctx *P, const xmlNode *map, cifti_axis *a) {
  const xmlNode *vol = xml_child(map, "Volume");
  if (vol && parse_volume(P, vol, a)) return -1;
  size_t np = 0, ns = 0;
  for (const xmlNode *c = map->children; c; c = c->next) {
    np += xml_is(c, "Parcel");
    ns += xml_is(c, "Surface");
  }
  a->parcels = calloc(np ? np : 1, sizeof *a->parcels);
  a->surfaces = calloc(ns ? ns : 1, sizeof *a->surfaces);
  if (!a->parcels || !a->surfaces) return cfail(P->err, P->errlen, "%s: out of memory", P->name);
  for (const xmlNode *c = map->children; c; c = c->next) {
    if (!xml_is(c, "Surface")) continue;
    cifti_surface *s = &a->surfaces[a->nsurfaces++];
    if (xml_attr(c, "BrainStructure", s->structure, sizeof s->structure))
      return cfail(P->err, P->errlen, "%s: CIFTI <Surface> has no BrainStructure", P->name);
    if (attr_size(P, c, "SurfaceNumberOfVertices", &s->nvert, "Surface")) return -1;
  }
  for (const xmlNode *c = map->children; c; c = c->next) {
    if (!xml_is(c, "Parcel")) continue;
    cifti_parcel *p = &a->parcels[a->nparcels++];
    char nm[1024] = "";
    if (xml_attr(c, "Name", nm, sizeof nm))
      return cfail(P->err, P->errlen, "%s: CIFTI <Parcel> %zu has no Name", P->name, a->nparcels - 1);
    if (!(p->name = strdup(nm))) return cfail(P->err, P->errlen, "%s: out of memory", P->name);
    size_t nsurf = 0;
    for (const xmlNode *e = c->children; e; e = e->next)
      nsurf += xml_is(e, "Vertices");
    p->surf = calloc(nsurf ? nsurf : 1, sizeof *p->surf);
    if (!p->surf) return cfail(P->err, P->errlen, "%s: out of memory", P->name);
    for (const xmlNode *e = c->children; e; e = e->next) {
      if (xml_is(e, "VoxelIndicesIJK")) {
        if (!a->has_volume)
          return cfail(P->err, P->errlen, "%s: CIFTI parcel %s has voxels but no <Volume>", P->name, nm);
        if (p->ijk)
          return cfail(P->err, P->errlen, "%s: CIFTI parcel %s has more than one <VoxelIndicesIJK>", P->name, nm);
        size_t len = 0;
        char *t = xml_text(e, &len);
        if (!t) return cfail(P->err, P->errlen, "%s: out of memory", P->name);
        size_t cnt = 0;
        for (size_t i = 0; i < len; i++)
          cnt += !isspace((unsigned char)t[i]) && (i == 0 || isspace((unsigned char)t[i - 1]));
        free(t);
        if (cnt % 3)
          return cfail(P->err, P->errlen, "%s: CIFTI parcel %s: VoxelIndicesIJK is not triples", P->name, nm);
        p->nvox = cnt / 3;
        p->ijk = malloc((cnt ? cnt : 1) * sizeof *p->ijk);
        if (!p->ijk) return cfail(P->err, P->errlen, "%s: out of memory", P->name);
        int64_t mx = a->vol_dims[0] > a->vol_dims[1] ? a->vol_dims[0] : a->vol_dims[1];
        if (a->vol_dims[2] > mx) mx = a->vol_dims[2];
        if (parse_ints(P, e, cnt, mx - 1, p->ijk, "VoxelIndicesIJK")) return -1;
      } else if (xml_is(e, "Vertices")) {
        cifti_parcel_surf *s = &p->surf[p->nsurf++];
        if (xml_attr(e, "BrainStructure", s->structure, sizeof s->structure))
          return cfail(P->err, P->errlen, "%s: CIFTI parcel %s: <Vertices> without BrainStructure", P->name,
                       nm);
        size_t nvert = 0;
        for (size_t k = 0; k < a->nsurfaces; k++)
          if (!strcmp(a->surfaces[k].structure, s->structure)) nvert = a->surfaces[k].nvert;
        if (!nvert)
          return cfail(P->err, P->errlen, "%s: CIFTI parcel %s: vertices on %s, which no <Surface> declares",
                       P->name, nm, s->structure);
        size_t len = 0;
        char *t = xml_text(e, &len);
        if (!t) return cfail(P->err, P->errlen, "%s: out of memory", P->name);
        size_t cnt = 0;
        for (size_t i = 0; i < len; i++)
          cnt += !isspace((unsigned char)t[i]) && (i == 0 || isspace((unsigned char)t[i - 1]));
        free(t);
        s->n = cnt;
        s->vertices = malloc((cnt ? cnt : 1) * sizeof *s->vertices);
        if (!s->vertices) return cfail(P->err, P->errlen, "%s: out of memory", P->name);
        if (parse_ints(P, e, cnt, (int64_t)nvert - 1, (int32_t *)s->vertices, "Vertices")) return -1;
      }
    }
  }
  a->n = a->nparcels;
  return 0;
}

static int parse_named_maps(const pctx *P, const xmlNode *map, cifti_axis *a) {
  size_t n = 0;
  for (const xmlNode *c = map->children; c; c = c->next)
    n += xml_is(c, "NamedMap");
  a->maps = calloc(n ? n : 1, sizeof *a->maps);
  if (!a->maps) return cfail(P->err, P->errlen, "%s: out of memory", P->name);
  a->n = n;
  size_t i = 0;
  for (const xmlNode *c = map->children; c; c = c->next) {
    if (!xml_is(c, "NamedMap")) continue;
    cifti_map *m = &a->maps[i++];
    const xmlNode *mn = xml_child(c, "MapName");
    char *raw = mn ? xml_text(mn, NULL) : calloc(1, 1);
    m->name = raw ? xml_trimmed(raw) : NULL;
    free(raw);
    if (!m->name) return cfail(P->err, P->errlen, "%s: out of memory", P->name);
    const xmlNode *lt = xml_child(c, "LabelTable");
    if (a->type != CIFTI_LABELS || !lt) continue;
    for (const xmlNode *l = lt->children; l; l = l->next) {
      if (!xml_is(l, "Label")) continue;
      char b[64];
      gifti_label lab;
      memset(&lab, 0, sizeof lab);
      if (xml_attr(l, "Key", b, sizeof b))
        return cfail(P->err, P->errlen, "%s: CIFTI map %s: a <Label> has no Key", P->name, m->name);
      lab.key = (int32_t)strtol(b, NULL, 10);
      static const char *const rgba[4] = {"Red", "Green", "Blue", "Alpha"};
      for (int k = 0; k < 4; k++)
        lab.rgba[k] = xml_attr(l, rgba[k], b, sizeof b) ? -1.0 : strtod(b, NULL);
      char *lt_raw = xml_text(l, NULL);
      lab.name = lt_raw ? xml_trimmed(lt_raw) : NULL;
      free(lt_raw);
      gifti_label *nl = lab.name ? realloc(m->labels, (m->nlabels + 1) * sizeof *nl) : NULL;
      if (!nl) {
        free(lab.name);
        return cfail(P->err, P->errlen, "%s: out of memory", P->name);
      }
      m->labels = nl;
      m->labels[m->nlabels++] = lab;
    }
  }
  return 0;
}

static int parse_series(const pctx *P, const xmlNode *map, cifti_axis *a) {
  char b[64];
  if (attr_size(P, map, "NumberOfSeriesPoints", &a->n, "MatrixIndicesMap")) return -1;
  a->start = xml_attr(map, "SeriesStart", b, sizeof b) ? 0 : strtod(b, NULL);
  a->step = xml_attr(map, "SeriesStep", b, sizeof b) ? 0 : strtod(b, NULL);
  a->exponent = xml_attr(map, "SeriesExponent", b, sizeof b) ? 0 : (int)strtol(b, NULL, 10);
  if (xml_attr(map, "SeriesUnit", a->unit, sizeof a->unit)) snprintf(a->unit, sizeof a->unit, "SECOND");
  return 0;
}

static int parse_axes(const pctx *P, const xmlNode *matrix, cifti_file *c) {
  int seen[2] = {0, 0};
  for (const xmlNode *m = matrix->children; m; m = m->next) {
    if (!xml_is(m, "MatrixIndicesMap")) continue;
    char dims[32], type[64];
    if (xml_attr(m, "AppliesToMatrixDimension", dims, sizeof dims) ||
        xml_attr(m, "IndicesMapToDataType", type, sizeof type))
      return cfail(P->err, P->errlen,
                   "%s: CIFTI <MatrixIndicesMap> lacks AppliesToMatrixDimension or "
                   "IndicesMapToDataType",
                   P->name);
    int t = !strcmp(type, "CIFTI_INDEX_TYPE_BRAIN_MODELS") ? CIFTI_BRAIN_MODELS
            : !strcmp(type, "CIFTI_INDEX_TYPE_PARCELS")    ? CIFTI_PARCELS
            : !strcmp(type, "CIFTI_INDEX_TYPE_SERIES")     ? CIFTI_SERIES
            : !strcmp(type, "CIFTI_INDEX_TYPE_SCALARS")    ? CIFTI_SCALARS
            : !strcmp(type, "CIFTI_INDEX_TYPE_LABELS")     ? CIFTI_LABELS
                                                           : 0;
    if (!t)
      return cfail(P->err, P->errlen, "%s: CIFTI IndicesMapToDataType '%s' is not supported", P->name, type);
    int first = -1, both = 0;
    for (char *d = dims; *d; d++) {
      if (*d == '0' || *d == '1') {
        if (first < 0)
          first = *d - '0';
        else
          both = 1;
      } else if (*d != ',' && *d != ' ')
        first = -2;
    }
    if (first < 0)
      return cfail(P->err, P->errlen, "%s: CIFTI AppliesToMatrixDimension '%s' is not 0, 1 or 0,1", P->name,
                   dims);
    cifti_axis *a = &c->axes[first];
    if (seen[first])
      return cfail(P->err, P->errlen, "%s: CIFTI matrix dimension %d is mapped twice", P->name, first);
    seen[first] = 1;
    a->type = t;
    int rc = t == CIFTI_BRAIN_MODELS ? parse_brain_models(P, m, a)
             : t == CIFTI_PARCELS    ? parse_parcels(P, m, a)
             : t == CIFTI_SERIES     ? parse_series(P, m, a)
                                     : parse_named_maps(P, m, a);
    if (rc) return rc;
    if (both) {
      /* one map for both dimensions (a dconn / pconn): describe it twice */
      if (seen[1]) return cfail(P->err, P->errlen, "%s: CIFTI matrix dimension 1 is mapped twice", P->name);
      seen[1] = 1;
      c->axes[1].type = t;
      rc = t == CIFTI_BRAIN_MODELS ? parse_brain_models(P, m, &c->axes[1])
           : t == CIFTI_PARCELS    ? parse_parcels(P, m, &c->axes[1])
           : t == CIFTI_SERIES     ? parse_series(P, m, &c->axes[1])
                                   : parse_named_maps(P, m, &c->axes[1]);
      if (rc) return rc;
    }
  }
  if (!seen[0]) return cfail(P->err, P->errlen, "%s: CIFTI XML maps no matrix dimension 0", P->name);
  return 0;
}

/* ---- reading ----------------------------------------------------------------------- */

/* The ecode-32 extension's bytes, between the header and vox_offset. */
static int find_xml(const uint8_t *b, size_t len, const nifti_header *h, const char *name,
                    const uint8_t **xml, size_t *xlen, char *err, size_t errlen) {
  size_t pos = h->header_bytes, end = (size_t)h->vox_offset;
  if (end > len) end = len;
  if (pos + 4 > end || b[pos] == 0)
    return cfail(err, errlen, "%s: no NIfTI header extension: not a CIFTI-2 file (no ecode 32 XML)", name);
  pos += 4;
  while (pos + 8 <= end) {
    uint32_t es, ec;
    memcpy(&es, b + pos, 4);
    memcpy(&ec, b + pos + 4, 4);
    if (h->swapped) {
      es = __builtin_bswap32(es);
      ec = __builtin_bswap32(ec);
    }
    if (es < 8 || es > end - pos)
      return cfail(err, errlen, "%s: header extension size %u is invalid", name, es);
    if (ec == 32) {
      *xml = b + pos + 8;
      *xlen = es - 8;
      while (*xlen && (*xml)[*xlen - 1] == 0)
        (*xlen)--;
      return 0;
    }
    pos += es;
  }
  return cfail(err, errlen, "%s: no header extension with ecode 32: not a CIFTI-2 file", name);
}

/* Column-major [rows, cols] raw data to C-order float32, a block of
 * columns at a time. */
static int convert_matrix(const uint8_t *src, const nifti_header *h, size_t rows, size_t cols, float *out) {
  enum { BLOCK = 16 };
  size_t esz = (size_t)h->bytes_per_voxel;
  float *tmp = malloc(BLOCK * (rows ? rows : 1) * sizeof *tmp);
  if (!tmp) return -1;
  for (size_t c0 = 0; c0 < cols; c0 += BLOCK) {
    size_t nb = cols - c0 < BLOCK ? cols - c0 : BLOCK;
    if (nifti_convert_f32(src + c0 * rows * esz, nb * rows, h->datatype, h->swapped, h->slope, h->inter,
                          tmp)) {
      free(tmp);
      return -1;
    }
    for (size_t r = 0; r < rows; r++) {
      float *o = out + r * cols + c0;
      for (size_t j = 0; j < nb; j++)
        o[j] = tmp[j * rows + r];
    }
  }
  free(tmp);
  return 0;
}

static int read_plain(const void *buf, size_t len, const char *name, cifti_file *c, char *err, size_t errlen);

/* Inflated CIFTI files up to this size (a 7T dense series is ~1 GB). */
#define CIFTI_GZIP_LIMIT ((size_t)1 << 36)

int cifti_read_mem(const void *buf, size_t len, const char *name, cifti_file *c, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  if (!nifti_is_gzip(buf, len)) return read_plain(buf, len, name, c, err, errlen);
  uint8_t *raw = NULL;
  size_t n = 0;
  if (nifti_gunzip(buf, len, name, CIFTI_GZIP_LIMIT, &raw, &n, err, errlen)) return -1;
  int rc = read_plain(raw, n, name, c, err, errlen);
  free(raw);
  return rc;
}

/* A CIFTI-2 file's bytes, not compressed. */
static int read_plain(const void *buf, size_t len, const char *name, cifti_file *c, char *err,
                      size_t errlen) {
  nifti_header h;
  if (nifti_parse_header_cifti(buf, len, name, &h, err, errlen)) return -1;
  if (h.version != 2)
    return cfail(err, errlen, "%s: a NIfTI-1 header: CIFTI-2 files are NIfTI-2 (CIFTI-1 is not supported)",
                 name);
  if (!h.single_file) return cfail(err, errlen, "%s: a .hdr/.img pair cannot hold CIFTI-2", name);
  if (h.ndim < 5 || h.dim[1] != 1 || h.dim[2] != 1 || h.dim[3] != 1 || h.dim[4] != 1)
    return cfail(err, errlen,
                 "%s: dim = [%lld, %lld, %lld, %lld, %lld, ...]: a CIFTI-2 matrix has dim[1..4] = 1 "
                 "and its axes in dim[5], dim[6]",
                 name, (long long)h.dim[0], (long long)h.dim[1], (long long)h.dim[2], (long long)h.dim[3],
                 (long long)h.dim[4]);
  c->intent_code = h.intent_code;
  c->rows = (size_t)h.dim[5];
  c->cols = h.ndim >= 6 ? (size_t)h.dim[6] : 1;
  const uint8_t *xml = NULL;
  size_t xlen = 0;
  if (find_xml(buf, len, &h, name, &xml, &xlen, err, errlen)) return -1;
  char ename[600];
  snprintf(ename, sizeof ename, "%s (CIFTI XML)", name);
  xmlDocPtr doc = xml_parse(xml, xlen, ename, err, errlen);
  if (!doc) return -1;
  pctx P = {name, err, errlen};
  int rc = 0;
  xmlNode *root = xmlDocGetRootElement(doc);
  const xmlNode *matrix = root && xml_is(root, "CIFTI") ? xml_child(root, "Matrix") : NULL;
  if (!matrix)
    rc = cfail(err, errlen, "%s: CIFTI XML has no <CIFTI><Matrix>", name);
  else
    rc = parse_axes(&P, matrix, c);
  xmlFreeDoc(doc);
  if (!rc && c->axes[0].n != c->rows)
    rc = cfail(err, errlen, "%s: the CIFTI dimension-0 axis (%s) has %zu entries, dim[5] = %zu", name,
               cifti_axis_type_name(c->axes[0].type), c->axes[0].n, c->rows);
  if (!rc && c->axes[1].type && c->axes[1].n != c->cols)
    rc = cfail(err, errlen, "%s: the CIFTI dimension-1 axis (%s) has %zu entries, dim[6] = %zu", name,
               cifti_axis_type_name(c->axes[1].type), c->axes[1].n, c->cols);
  size_t need = c->rows * c->cols * (size_t)h.bytes_per_voxel;
  if (!rc && ((size_t)h.vox_offset > len || len - (size_t)h.vox_offset < need))
    rc = cfail(err, errlen, "%s: truncated data: %zu bytes after vox_offset %lld, the matrix needs %zu", name,
               (size_t)h.vox_offset > len ? 0 : len - (size_t)h.vox_offset, (long long)h.vox_offset, need);
  if (!rc && !(c->data = malloc((c->rows * c->cols > 0 ? c->rows * c->cols : 1) * sizeof *c->data)))
    rc = cfail(err, errlen, "%s: out of memory for a %zu x %zu matrix", name, c->rows, c->cols);
  if (!rc && convert_matrix((const uint8_t *)buf + h.vox_offset, &h, c->rows, c->cols, c->data))
    rc = cfail(err, errlen, "%s: out of memory", name);
  if (rc) cifti_free(c);
  return rc;
}

int cifti_read_file(const char *path, cifti_file *c, char *err, size_t errlen) {
  memset(c, 0, sizeof *c);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return cfail(err, errlen, "%s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size == 0) {
    close(fd);
    return cfail(err, errlen, "%s: not a regular, non-empty file", path);
  }
  void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  close(fd);
  if (m == MAP_FAILED) return cfail(err, errlen, "%s: mmap: %s", path, strerror(errno));
  int rc = cifti_read_mem(m, (size_t)st.st_size, path, c, err, errlen);
  munmap(m, (size_t)st.st_size);
  return rc;
}

/* ---- writing ----------------------------------------------------------------------- */

/* Integers as one text node: "a b c" (or rows of three for ijk). */
static int write_ints(xmlTextWriterPtr w, const char *elem, const char *attr_name, const char *attr_val,
                      const int64_t *v32, const uint32_t *u32, const int32_t *ijk, size_t n) {
  size_t cap = n * 12 + 2, o = 0;
  char *s = malloc(cap);
  if (!s) return -1;
  s[0] = 0;
  for (size_t i = 0; i < n; i++) {
    long long x = u32 ? (long long)u32[i] : ijk ? (long long)ijk[i] : (long long)v32[i];
    char sep = i + 1 == n ? 0 : ijk && i % 3 == 2 ? '\n' : ' ';
    o += (size_t)snprintf(s + o, cap - o, "%lld%c", x, sep);
    if (!sep) o--;
  }
  int rc = xmlTextWriterStartElement(w, BAD_CAST elem) < 0;
  if (attr_name) rc |= xmlTextWriterWriteAttribute(w, BAD_CAST attr_name, BAD_CAST attr_val) < 0;
  rc |= xmlTextWriterWriteString(w, BAD_CAST s) < 0;
  rc |= xmlTextWriterEndElement(w) < 0;
  free(s);
  return rc;
}

static int write_volume(xmlTextWriterPtr w, const cifti_axis *a) {
  char b[1024];
  snprintf(b, sizeof b, "%lld,%lld,%lld", (long long)a->vol_dims[0], (long long)a->vol_dims[1],
           (long long)a->vol_dims[2]);
  int rc = xmlTextWriterStartElement(w, BAD_CAST "Volume") < 0;
  rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "VolumeDimensions", BAD_CAST b) < 0;
  rc |= xmlTextWriterStartElement(w, BAD_CAST "TransformationMatrixVoxelIndicesIJKtoXYZ") < 0;
  rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "MeterExponent", BAD_CAST "-3") < 0;
  size_t o = 0;
  for (int i = 0; i < 16; i++)
    o += (size_t)snprintf(b + o, sizeof b - o, "%.17g%s", a->affine[i / 4][i % 4], i % 4 == 3 ? "\n" : " ");
  rc |= xmlTextWriterWriteString(w, BAD_CAST b) < 0;
  rc |= xmlTextWriterEndElement(w) < 0;
  rc |= xmlTextWriterEndElement(w) < 0;
  return rc;
}

static int write_axis(xmlTextWriterPtr w, const cifti_axis *a) {
  int rc = xmlTextWriterStartElement(w, BAD_CAST "MatrixIndicesMap") < 0;
  rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "AppliesToMatrixDimension", BAD_CAST "1") < 0;
  rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "IndicesMapToDataType",
                                    BAD_CAST cifti_axis_type_name(a->type)) < 0;
  if (a->has_volume) rc |= write_volume(w, a);
  char num[32];
  if (a->type == CIFTI_BRAIN_MODELS) {
    for (size_t i = 0; i < a->nmodels && !rc; i++) {
      const cifti_model *m = &a->models[i];
      rc |= xmlTextWriterStartElement(w, BAD_CAST "BrainModel") < 0;
      snprintf(num, sizeof num, "%zu", m->offset);
      rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "IndexOffset", BAD_CAST num) < 0;
      snprintf(num, sizeof num, "%zu", m->count);
      rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "IndexCount", BAD_CAST num) < 0;
      rc |= xmlTextWriterWriteAttribute(
                w, BAD_CAST "ModelType",
                BAD_CAST(m->surface ? "CIFTI_MODEL_TYPE_SURFACE" : "CIFTI_MODEL_TYPE_VOXELS")) < 0;
      rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "BrainStructure", BAD_CAST m->structure) < 0;
      if (m->surface) {
        snprintf(num, sizeof num, "%zu", m->nvert);
        rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "SurfaceNumberOfVertices", BAD_CAST num) < 0;
        rc |= write_ints(w, "VertexIndices", NULL, NULL, NULL, m->vertices, NULL, m->count);
      } else {
        rc |= write_ints(w, "VoxelIndicesIJK", NULL, NULL, NULL, NULL, m->ijk, m->count * 3);
      }
      rc |= xmlTextWriterEndElement(w) < 0;
    }
  } else {
    for (size_t i = 0; i < a->nsurfaces && !rc; i++) {
      rc |= xmlTextWriterStartElement(w, BAD_CAST "Surface") < 0;
      rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "BrainStructure", BAD_CAST a->surfaces[i].structure) < 0;
      snprintf(num, sizeof num, "%zu", a->surfaces[i].nvert);
      rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "SurfaceNumberOfVertices", BAD_CAST num) < 0;
      rc |= xmlTextWriterEndElement(w) < 0;
    }
    for (size_t i = 0; i < a->nparcels && !rc; i++) {
      const cifti_parcel *p = &a->parcels[i];
      rc |= xmlTextWriterStartElement(w, BAD_CAST "Parcel") < 0;
      rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "Name", BAD_CAST p->name) < 0;
      for (size_t k = 0; k < p->nsurf && !rc; k++)
        rc |= write_ints(w, "Vertices", "BrainStructure", p->surf[k].structure, NULL, p->surf[k].vertices,
                         NULL, p->surf[k].n);
      if (p->nvox) rc |= write_ints(w, "VoxelIndicesIJK", NULL, NULL, NULL, NULL, p->ijk, p->nvox * 3);
      rc |= xmlTextWriterEndElement(w) < 0;
    }
  }
  rc |= xmlTextWriterEndElement(w) < 0;
  return rc;
}

static void put_i16(uint8_t *h, size_t off, int16_t v) { memcpy(h + off, &v, 2); }
static void put_i32(uint8_t *h, size_t off, int32_t v) { memcpy(h + off, &v, 4); }
static void put_i64(uint8_t *h, size_t off, int64_t v) { memcpy(h + off, &v, 8); }
static void put_f64(uint8_t *h, size_t off, double v) { memcpy(h + off, &v, 8); }

int cifti_write_scalars(FILE *fp, const float *data, size_t rows, const char *const *map_names,
                        const cifti_axis *cols, char *err, size_t errlen) {
  if (cols->type != CIFTI_BRAIN_MODELS && cols->type != CIFTI_PARCELS)
    return cfail(err, errlen, "CIFTI columns must be brain models or parcels");
  const uint16_t one = 1;
  if (*(const uint8_t *)&one != 1) return cfail(err, errlen, "CIFTI writing needs a little-endian machine");
  xmlBufferPtr xb = xmlBufferCreate();
  xmlTextWriterPtr w = xb ? xmlNewTextWriterMemory(xb, 0) : NULL;
  if (!w) {
    if (xb) xmlBufferFree(xb);
    return cfail(err, errlen, "out of memory");
  }
  int rc = xmlTextWriterStartDocument(w, "1.0", "UTF-8", NULL) < 0;
  rc |= xmlTextWriterStartElement(w, BAD_CAST "CIFTI") < 0;
  rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "Version", BAD_CAST "2") < 0;
  rc |= xmlTextWriterStartElement(w, BAD_CAST "Matrix") < 0;
  rc |= xmlTextWriterStartElement(w, BAD_CAST "MatrixIndicesMap") < 0;
  rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "AppliesToMatrixDimension", BAD_CAST "0") < 0;
  rc |= xmlTextWriterWriteAttribute(w, BAD_CAST "IndicesMapToDataType", BAD_CAST "CIFTI_INDEX_TYPE_SCALARS") <
        0;
  for (size_t r = 0; r < rows && !rc; r++) {
    rc |= xmlTextWriterStartElement(w, BAD_CAST "NamedMap") < 0;
    rc |= xmlTextWriterWriteElement(w, BAD_CAST "MapName", BAD_CAST map_names[r]) < 0;
    rc |= xmlTextWriterEndElement(w) < 0;
  }
  rc |= xmlTextWriterEndElement(w) < 0;
  if (!rc) rc = write_axis(w, cols);
  rc |= xmlTextWriterEndElement(w) < 0;
  rc |= xmlTextWriterEndElement(w) < 0;
  rc |= xmlTextWriterEndDocument(w) < 0;
  xmlFreeTextWriter(w);
  if (rc) {
    xmlBufferFree(xb);
    return cfail(err, errlen, "cannot build the CIFTI XML (out of memory)");
  }
  size_t xlen = (size_t)xmlBufferLength(xb), esize = (8 + xlen + 15) / 16 * 16;
  size_t ncols = cols->n;
  uint8_t hdr[544];
  memset(hdr, 0, sizeof hdr);
  put_i32(hdr, 0, 540);
  memcpy(hdr + 4, "n+2\0\r\n\032\n", 8);
  put_i16(hdr, 12, 16); /* FLOAT32 */
  put_i16(hdr, 14, 32);
  int64_t dim[8] = {6, 1, 1, 1, 1, (int64_t)rows, (int64_t)ncols, 1};
  for (int i = 0; i < 8; i++) {
    put_i64(hdr, 16 + 8 * (size_t)i, dim[i]);
    put_f64(hdr, 104 + 8 * (size_t)i, 1.0);
  }
  put_i64(hdr, 168, (int64_t)(544 + esize));
  put_f64(hdr, 176, 1.0);
  int dense = cols->type == CIFTI_BRAIN_MODELS;
  put_i32(hdr, 504, dense ? 3006 : 3008);
  memcpy(hdr + 508, dense ? "ConnDenseScalar" : "ConnParcelScalr", 15);
  hdr[540] = 1;
  uint8_t eh[8];
  int32_t es = (int32_t)esize, ec = 32;
  memcpy(eh, &es, 4);
  memcpy(eh + 4, &ec, 4);
  static const uint8_t zeros[16];
  int ok = fwrite(hdr, 1, sizeof hdr, fp) == sizeof hdr && fwrite(eh, 1, 8, fp) == 8 &&
           fwrite(xmlBufferContent(xb), 1, xlen, fp) == xlen &&
           fwrite(zeros, 1, esize - 8 - xlen, fp) == esize - 8 - xlen;
  xmlBufferFree(xb);
  float *col = malloc((rows ? rows : 1) * sizeof *col);
  if (!col) return cfail(err, errlen, "out of memory");
  for (size_t c = 0; c < ncols && ok; c++) {
    for (size_t r = 0; r < rows; r++)
      col[r] = data[r * ncols + c];
    ok = fwrite(col, sizeof *col, rows, fp) == rows;
  }
  free(col);
  if (!ok) return cfail(err, errlen, "write failed: %s", strerror(errno));
  return 0;
}
