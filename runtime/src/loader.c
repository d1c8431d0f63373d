/*
 * loader.c — finding and opening plugin shared objects.
 *
 * A plugin is found by name as NAME.so in, in order: the install folder (next
 * to libmyelin itself: LIBDIR/myelin/plugins, found with dladdr so the build
 * tree and any install prefix work without environment variables), each
 * folder of MYELIN_PLUGIN_PATH, then the pipeline file's plugin_path; the
 * first folder holding NAME.so wins (`myelin plugins` warns about the files
 * it shadows), and a folder named twice is searched once. The
 * only symbol looked up is myelin_plugin_entry; the descriptor it returns is
 * checked for ABI major/minor and struct size before anything else is read,
 * so an incompatible plugin is refused with both versions named.
 */
#include <dirent.h>
#include <dlfcn.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"

static const char lib_anchor = 0; /* an address inside libmyelin, for dladdr */

const char *plugin_install_dir(void) {
  static char dir[PATH_MAX]; /* computed once; immutable afterwards */
  if (dir[0]) return dir;
  Dl_info info;
  if (dladdr(&lib_anchor, &info) && info.dli_fname) {
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", info.dli_fname);
    char real[PATH_MAX];
    const char *p = realpath(tmp, real) ? real : tmp;
    snprintf(tmp, sizeof tmp, "%s", p);
    snprintf(dir, sizeof dir, "%s/myelin/plugins", dirname(tmp));
  }
  return dir;
}

/* 1 when a and b name the same folder (the same path, or both resolve to it). */
static int same_dir(const char *a, const char *b) {
  if (!strcmp(a, b)) return 1;
  char ra[PATH_MAX], rb[PATH_MAX];
  return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

/* Appends a copy of dir unless it is listed already (MYELIN_PLUGIN_PATH may
 * name the install folder: searching it twice would only show every plugin
 * as its own duplicate); 0 or MYELIN_ENOMEM. */
static int dirs_push(char ***dirs, size_t *n, size_t *cap, const char *dir) {
  for (size_t i = 0; i < *n; i++)
    if (same_dir((*dirs)[i], dir)) return 0;
  if (*n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 8;
    char **nd = realloc(*dirs, ncap * sizeof *nd);
    if (!nd) return MYELIN_ENOMEM;
    *dirs = nd;
    *cap = ncap;
  }
  if (!((*dirs)[*n] = xstrdup(dir))) return MYELIN_ENOMEM;
  (*n)++;
  return 0;
}

size_t plugin_search_dirs(char *const *extra, size_t n_extra, char ***out) {
  size_t cap = 0, n = 0;
  char **dirs = NULL;
  int rc = dirs_push(&dirs, &n, &cap, plugin_install_dir());
  const char *env = getenv("MYELIN_PLUGIN_PATH");
  if (!rc && env && *env) {
    char *copy = xstrdup(env), *save = NULL;
    if (!copy) rc = MYELIN_ENOMEM;
    for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok && !rc; tok = strtok_r(NULL, ":", &save))
      rc = dirs_push(&dirs, &n, &cap, tok);
    free(copy);
  }
  for (size_t i = 0; i < n_extra && !rc; i++)
    rc = dirs_push(&dirs, &n, &cap, extra[i]);
  if (rc) { /* out of memory: an empty list, reported by the caller */
    for (size_t i = 0; i < n; i++)
      free(dirs[i]);
    free(dirs);
    *out = NULL;
    return 0;
  }
  *out = dirs;
  return n;
}

/* The plugin file name (NAME of NAME.so) in dirs closest to name, for "did
 * you mean"; near stays "" when none is close. */
static void closest_plugin(const char *name, char *const *dirs, size_t nd, char *near, size_t n) {
  suggest s;
  suggest_init(&s, name);
  for (size_t i = 0; i < nd; i++) {
    DIR *dir = opendir(dirs[i]);
    for (struct dirent *de = dir ? readdir(dir) : NULL; de; de = readdir(dir)) {
      size_t l = strlen(de->d_name);
      if (l <= 3 || strcmp(de->d_name + l - 3, ".so")) continue;
      char base[NAME_MAX + 1];
      snprintf(base, sizeof base, "%.*s", (int)(l - 3), de->d_name);
      if (suggest_add(&s, base)) {
        snprintf(near, n, "%s", base);
        s.best = near; /* base goes out of scope */
      }
    }
    if (dir) closedir(dir);
  }
}

int plugin_find(const char *name, char *const *extra, size_t n_extra, char *path, size_t n, char *err,
                size_t errlen) {
  if (strchr(name, '/')) { /* an explicit path */
    snprintf(path, n, "%s", name);
    return access(path, R_OK) == 0 ? 0 : MYELIN_ENOENT;
  }
  char **dirs;
  size_t nd = plugin_search_dirs(extra, n_extra, &dirs);
  if (nd == 0) { /* there is always the install dir: out of memory */
    if (err) snprintf(err, errlen, "looking for plugin '%s': out of memory", name);
    return MYELIN_ENOMEM;
  }
  int rc = MYELIN_ENOENT;
  for (size_t i = 0; i < nd && rc; i++) {
    snprintf(path, n, "%s/%s.so", dirs[i], name);
    if (access(path, R_OK) == 0) rc = 0;
  }
  if (rc && err) {
    char near[NAME_MAX + 1] = "";
    closest_plugin(name, dirs, nd, near, sizeof near);
    size_t off = (size_t)snprintf(err, errlen, "unknown plugin '%s'", name);
    if (near[0] && off < errlen)
      off += (size_t)snprintf(err + off, errlen - off, "; did you mean '%s'?", near);
    if (off < errlen) off += (size_t)snprintf(err + off, errlen - off, " (searched:");
    for (size_t i = 0; i < nd && off < errlen; i++)
      off += (size_t)snprintf(err + off, errlen - off, " %s", dirs[i]);
    if (off < errlen) snprintf(err + off, errlen - off, ")");
  }
  for (size_t i = 0; i < nd; i++)
    free(dirs[i]);
  free(dirs);
  return rc;
}

int plugin_open(const char *path, plugin_lib *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!dl) {
    snprintf(err, errlen, "%s: cannot load plugin: %s", path, dlerror());
    return MYELIN_ENOENT;
  }
  void *sym = dlsym(dl, MYELIN_ENTRY_SYMBOL);
  if (!sym) {
    snprintf(err, errlen, "%s: not a myelin plugin: no '%s' symbol", path, MYELIN_ENTRY_SYMBOL);
    dlclose(dl);
    return MYELIN_EABI;
  }
  myelin_plugin_entry_fn entry;
  memcpy(&entry, &sym, sizeof entry); /* ISO C: object -> function pointer */
  const myelin_plugin_desc *d = entry();
  if (!d) {
    snprintf(err, errlen, "%s: %s() returned NULL", path, MYELIN_ENTRY_SYMBOL);
    dlclose(dl);
    return MYELIN_EABI;
  }
  if (d->abi_major != MYELIN_ABI_MAJOR || d->abi_minor > MYELIN_ABI_MINOR) {
    snprintf(err, errlen,
             "%s: plugin ABI %u.%u is not compatible with this myelin (ABI %d.%d): rebuild the "
             "plugin against this version",
             path, d->abi_major, d->abi_minor, MYELIN_ABI_MAJOR, MYELIN_ABI_MINOR);
    dlclose(dl);
    return MYELIN_EABI;
  }
  if (d->struct_size < sizeof(myelin_plugin_desc) || !d->name || !d->init) {
    snprintf(err, errlen, "%s: malformed plugin descriptor (size %u, expected %zu)", path, d->struct_size,
             sizeof(myelin_plugin_desc));
    dlclose(dl);
    return MYELIN_EABI;
  }
  if (!(out->path = xstrdup(path))) {
    snprintf(err, errlen, "%s: out of memory", path);
    dlclose(dl);
    return MYELIN_ENOMEM;
  }
  out->dl = dl;
  out->desc = d;
  return 0;
}

void plugin_close(plugin_lib *p) {
  /* Plugins stay mapped until exit: a plugin's thread-local destructors or
   * libraries it pulled in (OpenBLAS) may still run after fini. */
  free(p->path);
  p->path = NULL;
  p->dl = NULL;
  p->desc = NULL;
}

int port_index(const myelin_port_def *ports, const char *name) {
  for (int i = 0; ports && ports[i].name; i++)
    if (strcmp(ports[i].name, name) == 0) return i;
  return -1;
}

size_t port_count(const myelin_port_def *ports) {
  size_t n = 0;
  while (ports && ports[n].name)
    n++;
  return n;
}

size_t param_count(const myelin_param_def *defs) {
  size_t n = 0;
  while (defs && defs[n].name)
    n++;
  return n;
}

static int kind_in(const char *k, size_t klen, const char *list) {
  if (strcmp(list, "*") == 0) return 1;
  const char *p = list;
  while (*p) {
    const char *e = strchr(p, '|');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == klen && strncmp(p, k, n) == 0) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

int kinds_compatible(const char *have, const char *want) {
  if (!have || !want) return 0;
  if (strcmp(have, "*") == 0 || strcmp(want, "*") == 0) return 1;
  const char *p = have;
  while (*p) {
    const char *e = strchr(p, '|');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (kind_in(p, n, want)) return 1;
    if (!e) break;
    p = e + 1;
  }
  return 0;
}

const char *schema_dir(void) {
  static char dir[PATH_MAX]; /* computed once */
  const char *env = getenv("MYELIN_SCHEMA_DIR");
  if (env && *env) return env;
  if (dir[0]) return dir;
  /* PREFIX/lib/myelin/plugins -> PREFIX/share/myelin/schemas (installed);
   * the source tree's schemas/ for a build tree */
  char rel[PATH_MAX];
  snprintf(rel, sizeof rel, "%s/../../../share/myelin/schemas", plugin_install_dir());
  if (!realpath(rel, dir)) snprintf(dir, sizeof dir, "%s", MYELIN_SCHEMA_DIR_BUILD);
  return dir;
}
