/*
 * fmri_discover.c — where the runs are (see fmri_discover.h).
 *
 * Folders are walked with nftw. Archives are sequential, so they are read
 * twice in all: one pass lists the images and reads the JSON sidecars, a
 * second (fmri_archive_each) hands each wanted image to the caller in entry
 * order, one in memory at a time. Sidecars follow the
 * BIDS inheritance rule in its common forms: NAME.json beside the image, else
 * task-T_bold.json or sub-S_task-T_bold.json in any folder above it (or at
 * the archive's top level). Only "RepetitionTime" is read, by a small scan
 * rather than a JSON parser. GIFTI hemispheres are paired by name after the
 * listing (pair_hemispheres): one run per L + R pair.
 */
#include "fmri_discover.h"

#include <archive.h>
#include <archive_entry.h>
#include <ctype.h>
#include <errno.h>
#include <ftw.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int dfail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int dfail(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

static int ends_with(const char *s, const char *suf) {
  size_t n = strlen(s), k = strlen(suf);
  return n >= k && strcmp(s + n - k, suf) == 0;
}

static const char *base_name(const char *p) {
  const char *s = strrchr(p, '/');
  return s ? s + 1 : p;
}

static int is_nifti_name(const char *p) { return ends_with(p, ".nii") || ends_with(p, ".nii.gz"); }

int fmri_is_gifti(const char *p) {
  return ends_with(p, ".gii") || ends_with(p, ".gii.gz") || ends_with(p, ".gii.bz2") ||
         ends_with(p, ".gii.xz");
}

/* Data on vertices (a folder walk skips meshes and label files). */
static int is_surface_data_name(const char *p) {
  return ends_with(p, ".func.gii") || ends_with(p, ".shape.gii");
}

static int is_bold_name(const char *p) {
  return ends_with(p, "_bold.nii") || ends_with(p, "_bold.nii.gz") || ends_with(p, "_bold.func.gii") ||
         ends_with(p, "_bold.dtseries.nii") || ends_with(p, "_bold.dtseries.nii.gz");
}

int fmri_is_archive(const char *p) {
  return ends_with(p, ".tar") || ends_with(p, ".tar.gz") || ends_with(p, ".tgz") ||
         ends_with(p, ".tar.bz2") || ends_with(p, ".tar.xz") || ends_with(p, ".zip");
}

/* ---- entities and sidecars ----------------------------------------------- */

static char *dupn(const char *s, size_t n) {
  char *r = malloc(n + 1);
  if (!r) return NULL;
  memcpy(r, s, n);
  r[n] = 0;
  return r;
}

int fmri_entities(const char *name, fmri_item *it) {
  static const char *const keys[] = {"sub", "ses", "task", "run", "space", "hemi"};
  char **slots[] = {&it->sub, &it->ses, &it->task, &it->run, &it->space, &it->hemi};
  const char *b = base_name(name);
  size_t blen = strcspn(b, ".");
  for (int k = 0; k < 6; k++) {
    free(*slots[k]);
    *slots[k] = NULL;
  }
  for (size_t i = 0; i < blen;) {
    size_t seg = strcspn(b + i, "_");
    if (i + seg > blen) seg = blen - i;
    const char *dash = memchr(b + i, '-', seg);
    if (dash) {
      size_t klen = (size_t)(dash - (b + i));
      for (int k = 0; k < 6; k++)
        if (strlen(keys[k]) == klen && !memcmp(b + i, keys[k], klen) && !*slots[k])
          *slots[k] = dupn(dash + 1, seg - klen - 1);
    }
    i += seg + 1;
  }
  for (int k = 0; k < 6; k++)
    if (!*slots[k] && !(*slots[k] = dupn("", 0))) return -1;
  return 0;
}

double fmri_json_tr(const char *text, size_t len) {
  static const char key[] = "\"RepetitionTime\"";
  size_t k = sizeof key - 1;
  for (size_t i = 0; i + k < len; i++) {
    if (memcmp(text + i, key, k) != 0) continue;
    size_t j = i + k;
    while (j < len && isspace((unsigned char)text[j]))
      j++;
    if (j >= len || text[j] != ':') continue;
    j++;
    while (j < len && isspace((unsigned char)text[j]))
      j++;
    char num[64];
    size_t n = 0;
    while (j < len && n < sizeof num - 1 && strchr("0123456789+-.eE", text[j]))
      num[n++] = text[j++];
    num[n] = 0;
    char *end;
    double v = strtod(num, &end);
    if (n && *end == 0 && v > 0) return v;
  }
  return 0.0;
}

static double file_tr(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0.0;
  char buf[65536];
  size_t n = fread(buf, 1, sizeof buf, f);
  fclose(f);
  return fmri_json_tr(buf, n);
}

/* NAME.json for NAME.nii[.gz] and NAME.func.gii / NAME.shape.gii / NAME.gii. */
static char *sidecar_name(const char *img) {
  size_t n = strlen(img);
  if (is_nifti_name(img))
    n -= ends_with(img, ".gz") ? 7 : 4;
  else if (is_surface_data_name(img))
    n -= 9;
  else if (ends_with(img, ".gii"))
    n -= 4;
  else
    return NULL;
  char *s = malloc(n + 6);
  if (!s) return NULL;
  memcpy(s, img, n);
  memcpy(s + n, ".json", 6);
  return s;
}

/* Candidate inherited sidecar names (without folder) for an item. */
static int inherited_names(const fmri_item *it, char names[2][512]) {
  if (!it->task[0]) return 0;
  snprintf(names[0], sizeof names[0], "task-%s_bold.json", it->task);
  snprintf(names[1], sizeof names[1], "sub-%s_task-%s_bold.json", it->sub, it->task);
  return 2;
}

static double folder_sidecar_tr(const fmri_item *it, const char *root) {
  char *exact = sidecar_name(it->path);
  double tr = exact ? file_tr(exact) : 0.0;
  free(exact);
  if (tr > 0) return tr;
  char names[2][512];
  int nn = inherited_names(it, names);
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", it->path);
  size_t rootlen = strlen(root);
  for (char *slash = strrchr(dir, '/'); slash; slash = strrchr(dir, '/')) {
    *slash = 0;
    for (int k = nn - 1; k >= 0; k--) {
      char p[4700];
      snprintf(p, sizeof p, "%s/%s", dir, names[k]);
      if ((tr = file_tr(p)) > 0) return tr;
    }
    if (strlen(dir) <= rootlen) break;
  }
  return 0.0;
}

/* ---- lists --------------------------------------------------------------- */

static int list_add(fmri_list *l, const char *path) {
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 16;
    fmri_item *nv = realloc(l->v, nc * sizeof *nv);
    if (!nv) return -1;
    l->v = nv;
    l->cap = nc;
  }
  fmri_item *it = &l->v[l->n];
  memset(it, 0, sizeof *it);
  it->path = strdup(path);
  if (!it->path || fmri_entities(path, it)) return -1;
  l->n++;
  return 0;
}

void fmri_item_free(fmri_item *it) {
  free(it->path);
  free(it->path2);
  free(it->sub);
  free(it->ses);
  free(it->task);
  free(it->run);
  free(it->space);
  free(it->hemi);
  memset(it, 0, sizeof *it);
}

void fmri_list_free(fmri_list *l) {
  for (size_t i = 0; i < l->n; i++)
    fmri_item_free(&l->v[i]);
  free(l->v);
  free(l->archive);
  memset(l, 0, sizeof *l);
}

static int cmp_item(const void *a, const void *b) {
  return strcmp(((const fmri_item *)a)->path, ((const fmri_item *)b)->path);
}

/* Keeps only *_bold images when there are any. */
static void prefer_bold(fmri_list *l) {
  size_t nb = 0;
  for (size_t i = 0; i < l->n; i++)
    nb += is_bold_name(l->v[i].path);
  if (nb == 0 || nb == l->n) return;
  size_t j = 0;
  for (size_t i = 0; i < l->n; i++) {
    if (is_bold_name(l->v[i].path))
      l->v[j++] = l->v[i];
    else
      fmri_item_free(&l->v[i]);
  }
  l->n = j;
}

/* The name with its hemi-L entity replaced by hemi-R (malloc'ed), or NULL. */
static char *right_name(const char *left) {
  const char *b = base_name(left);
  const char *h = strstr(b, "hemi-L");
  if (!h || (h != b && h[-1] != '_') || (h[6] != '_' && h[6] != '.')) return NULL;
  char *r = strdup(left);
  if (r) r[(size_t)(h - left) + 5] = 'R';
  return r;
}

/* Sorted GIFTI items: each hemi-L file whose hemi-R twin is listed takes it
 * as path2, and the twin leaves the list. */
static int pair_hemispheres(fmri_list *l) {
  for (size_t i = 0; i < l->n; i++) {
    if (!fmri_is_gifti(l->v[i].path) || strcmp(l->v[i].hemi, "L")) continue;
    char *r = right_name(l->v[i].path);
    if (!r) continue;
    for (size_t j = 0; j < l->n; j++)
      if (!strcmp(l->v[j].path, r)) {
        l->v[i].path2 = l->v[j].path;
        l->v[j].path = NULL;
        fmri_item_free(&l->v[j]);
        memmove(&l->v[j], &l->v[j + 1], (l->n - j - 1) * sizeof *l->v);
        l->n--;
        if (j < i) i--;
        break;
      }
    free(r);
  }
  return 0;
}

/* nftw has no user pointer: the walk state lives in this thread-local. */
static _Thread_local fmri_list *walk_list;
static _Thread_local int walk_oom;

static int walk_cb(const char *p, const struct stat *st, int type, struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (type == FTW_F && (is_nifti_name(p) || is_surface_data_name(p)) && base_name(p)[0] != '.' &&
      list_add(walk_list, p)) {
    walk_oom = 1;
    return 1;
  }
  return 0;
}

static int discover_folder(const char *dir, fmri_list *l, char *err, size_t errlen) {
  walk_list = l;
  walk_oom = 0;
  if (nftw(dir, walk_cb, 32, FTW_PHYS) != 0 && !walk_oom)
    return dfail(err, errlen, "%s: cannot walk folder: %s", dir, strerror(errno));
  if (walk_oom) return dfail(err, errlen, "%s: out of memory", dir);
  prefer_bold(l);
  if (l->n) qsort(l->v, l->n, sizeof *l->v, cmp_item); /* v is NULL when nothing was found */
  pair_hemispheres(l);
  for (size_t i = 0; i < l->n; i++)
    l->v[i].tr = folder_sidecar_tr(&l->v[i], dir);
  return 0;
}

static int discover_glob(const char *pattern, fmri_list *l, char *err, size_t errlen) {
  glob_t g;
  int rc = glob(pattern, 0, NULL, &g);
  if (rc == GLOB_NOMATCH) return dfail(err, errlen, "%s: no file matches", pattern);
  if (rc != 0) return dfail(err, errlen, "%s: glob failed", pattern);
  for (size_t i = 0; i < g.gl_pathc; i++)
    if (list_add(l, g.gl_pathv[i])) {
      globfree(&g);
      return dfail(err, errlen, "out of memory");
    }
  globfree(&g);
  if (l->n) qsort(l->v, l->n, sizeof *l->v, cmp_item); /* v is NULL when nothing was found */
  pair_hemispheres(l);
  for (size_t i = 0; i < l->n; i++) {
    char *sc = sidecar_name(l->v[i].path);
    l->v[i].tr = sc ? file_tr(sc) : 0.0;
    free(sc);
  }
  return 0;
}

/* ---- archives -------------------------------------------------------------- */

static struct archive *archive_open(const char *path, char *err, size_t errlen) {
  struct archive *a = archive_read_new();
  if (!a) {
    dfail(err, errlen, "out of memory");
    return NULL;
  }
  archive_read_support_filter_all(a);
  archive_read_support_format_tar(a);
  archive_read_support_format_zip(a);
  if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
    dfail(err, errlen, "%s: cannot open archive: %s", path, archive_error_string(a));
    archive_read_free(a);
    return NULL;
  }
  return a;
}

/* Reads the current entry's data (size may be unknown). */
static int read_entry(struct archive *a, const char *name, uint8_t **buf, size_t *len, char *err,
                      size_t errlen) {
  size_t cap = 1 << 16, n = 0;
  uint8_t *b = malloc(cap);
  if (!b) return dfail(err, errlen, "out of memory");
  for (;;) {
    if (n == cap) {
      uint8_t *nb = realloc(b, cap *= 2);
      if (!nb) {
        free(b);
        return dfail(err, errlen, "%s: out of memory", name);
      }
      b = nb;
    }
    la_ssize_t k = archive_read_data(a, b + n, cap - n);
    if (k < 0) {
      free(b);
      return dfail(err, errlen, "%s: %s", name, archive_error_string(a));
    }
    if (k == 0) break;
    n += (size_t)k;
  }
  *buf = b;
  *len = n;
  return 0;
}

int fmri_archive_each(const char *archive, fmri_entry_want want, fmri_entry_fn fn, void *arg, char *err,
                      size_t errlen) {
  struct archive *a = archive_open(archive, err, errlen);
  if (!a) return -1;
  struct archive_entry *e;
  int rc = 0, r;
  while (!rc && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char *name = archive_entry_pathname(e);
    if (!name || archive_entry_filetype(e) != AE_IFREG || !want(arg, name)) continue;
    uint8_t *buf;
    size_t len;
    if (read_entry(a, name, &buf, &len, err, errlen)) {
      rc = -1;
      break;
    }
    rc = fn(arg, name, buf, len);
    free(buf);
  }
  if (!rc && r != ARCHIVE_EOF) rc = dfail(err, errlen, "%s: %s", archive, archive_error_string(a));
  archive_read_free(a);
  return rc;
}

typedef struct sidecar {
  char *name;
  double tr;
} sidecar;

static double archive_sidecar_tr(const fmri_item *it, const sidecar *sc, size_t nsc) {
  char *exact = sidecar_name(it->path);
  char names[2][512];
  int nn = inherited_names(it, names);
  double best = 0.0;
  int best_rank = 0; /* 3 exact, 2 sub+task, 1 task */
  for (size_t i = 0; i < nsc; i++) {
    int rank = 0;
    if (exact && strcmp(sc[i].name, exact) == 0)
      rank = 3;
    else if (nn && strcmp(base_name(sc[i].name), names[1]) == 0)
      rank = 2;
    else if (nn && strcmp(base_name(sc[i].name), names[0]) == 0)
      rank = 1;
    if (rank > best_rank && sc[i].tr > 0) {
      best_rank = rank;
      best = sc[i].tr;
    }
  }
  free(exact);
  return best;
}

static int discover_archive(const char *path, fmri_list *l, char *err, size_t errlen) {
  struct archive *a = archive_open(path, err, errlen);
  if (!a) return -1;
  sidecar *sc = NULL;
  size_t nsc = 0;
  struct archive_entry *e;
  int r, rc = 0;
  while (!rc && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
    const char *name = archive_entry_pathname(e);
    if (!name || archive_entry_filetype(e) != AE_IFREG || base_name(name)[0] == '.') continue;
    if (is_nifti_name(name)) {
      if (list_add(l, name)) rc = dfail(err, errlen, "out of memory");
    } else if (ends_with(name, ".json")) {
      uint8_t *buf;
      size_t len;
      if (read_entry(a, name, &buf, &len, err, errlen)) {
        rc = -1;
        break;
      }
      sidecar *ns = realloc(sc, (nsc + 1) * sizeof *sc);
      if (!ns || !(ns[nsc].name = strdup(name))) {
        free(buf);
        if (ns) sc = ns;
        rc = dfail(err, errlen, "out of memory");
        break;
      }
      sc = ns;
      sc[nsc++].tr = fmri_json_tr((const char *)buf, len);
      free(buf);
    }
  }
  if (!rc && r != ARCHIVE_EOF) rc = dfail(err, errlen, "%s: %s", path, archive_error_string(a));
  archive_read_free(a);
  if (!rc) {
    prefer_bold(l);
    if (l->n) qsort(l->v, l->n, sizeof *l->v, cmp_item);
    for (size_t i = 0; i < l->n; i++)
      l->v[i].tr = archive_sidecar_tr(&l->v[i], sc, nsc);
    if (!(l->archive = strdup(path))) rc = dfail(err, errlen, "out of memory");
  }
  for (size_t i = 0; i < nsc; i++)
    free(sc[i].name);
  free(sc);
  return rc;
}

int fmri_discover(const char *path, fmri_list *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  struct stat st;
  int rc;
  if (!path || !*path) return dfail(err, errlen, "no path given");
  if (strpbrk(path, "*?[") && stat(path, &st) != 0)
    rc = discover_glob(path, out, err, errlen);
  else if (stat(path, &st) != 0)
    return dfail(err, errlen, "%s: %s", path, strerror(errno));
  else if (S_ISDIR(st.st_mode))
    rc = discover_folder(path, out, err, errlen);
  else if (fmri_is_archive(path))
    rc = discover_archive(path, out, err, errlen);
  else {
    rc = list_add(out, path) ? dfail(err, errlen, "out of memory") : 0;
    if (!rc) {
      char *sc = sidecar_name(path);
      out->v[0].tr = sc ? file_tr(sc) : 0.0;
      free(sc);
    }
  }
  if (!rc && out->n == 0)
    rc = dfail(err, errlen, "%s: no .nii, .nii.gz, .func.gii or .shape.gii file found", path);
  if (rc) fmri_list_free(out);
  return rc;
}

static int numeric(const char *s) {
  if (!*s) return 0;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s)) return 0;
  return 1;
}

int fmri_filter_match(const char *value, const char *const *allowed, size_t n, const char *prefix) {
  if (n == 0) return 1;
  for (size_t i = 0; i < n; i++) {
    const char *a = allowed[i];
    size_t pl = prefix ? strlen(prefix) : 0;
    if (pl && strncmp(a, prefix, pl) == 0) a += pl;
    if (strcmp(a, value) == 0) return 1;
    if (numeric(a) && numeric(value) && strtol(a, NULL, 10) == strtol(value, NULL, 10)) return 1;
  }
  return 0;
}
