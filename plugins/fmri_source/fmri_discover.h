/*
 * fmri_discover.h — finding fMRI runs: single files, globs, BIDS folders and
 * archives of any of those; BIDS entities from file names; TR from JSON
 * sidecars. Plain C (libarchive for archives), no framework types.
 */
#ifndef MYELIN_FMRI_DISCOVER_H
#define MYELIN_FMRI_DISCOVER_H

#include <stddef.h>
#include <stdint.h>

typedef struct fmri_item {
  char *path;  /* file path, or entry path inside `archive` */
  char *path2; /* GIFTI: the right hemisphere paired with path (hemi-L), else NULL */
  char *sub, *ses, *task, *run, *space, *hemi; /* BIDS entity values, "" when absent */
  double tr; /* seconds from the JSON sidecar; 0 = unknown (use the header) */
} fmri_item;

typedef struct fmri_list {
  fmri_item *v;
  size_t n, cap;
  char *archive; /* the archive holding every item, or NULL for plain files */
} fmri_list;

/* 1 for .tar, .tar.gz, .tar.bz2, .tar.xz, .zip names. */
int fmri_is_archive(const char *path);
/* 1 for GIFTI names (.gii, .gii.gz, .gii.bz2, .gii.xz). */
int fmri_is_gifti(const char *path);
/*
 * Lists the runs under `path`: a .nii/.nii.gz or .gii file; a glob; a
 * folder (BIDS: every *_bold.nii[.gz] and *_bold.func.gii below it, or when
 * there is none every .nii[.gz], .func.gii and .shape.gii); or an archive of
 * NIfTI files (entries read in place, nothing extracted). GIFTI files whose
 * names differ only in hemi-L / hemi-R become one item (path = L, path2 =
 * R). Items are sorted by path. Returns 0, or -1 with a message in err (no
 * match is an error naming the path).
 */
int fmri_discover(const char *path, fmri_list *out, char *err, size_t errlen);
void fmri_list_free(fmri_list *l);
void fmri_item_free(fmri_item *it);

/* Parses sub-/ses-/task-/run-/space-/hemi- entities from a file name (any folder
 * part is ignored). Strings are malloc'ed into it (free with the list). */
int fmri_entities(const char *name, fmri_item *it);
/* The "RepetitionTime" number of a BIDS JSON sidecar; 0 when absent. */
double fmri_json_tr(const char *text, size_t len);
/* One pass over an archive in entry order: for each regular entry for which
 * want(arg, name) returns 1, reads it into memory and calls fn(arg, name,
 * buf, len) (buf is freed after fn returns). fn returning non-zero stops the
 * walk and is returned. Returns 0, that value, or -1 with err set. */
typedef int (*fmri_entry_want)(void *arg, const char *entry);
typedef int (*fmri_entry_fn)(void *arg, const char *entry, const uint8_t *buf, size_t len);
int fmri_archive_each(const char *archive, fmri_entry_want want, fmri_entry_fn fn, void *arg, char *err,
                      size_t errlen);
/* 1 when `value` passes a filter list (empty list = all). Subjects compare
 * with or without "sub-"; numeric runs compare as numbers ("01" == "1"). */
int fmri_filter_match(const char *value, const char *const *allowed, size_t n, const char *prefix);

#endif
