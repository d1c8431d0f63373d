/*
 * cli_plugins.c — `myelin plugins [--json]`: every plugin file on the search
 * path with its name, version, summary and path.
 *
 * The folders are the loader's, in the loader's order (plugin_search_dirs:
 * the install folder, then each folder of MYELIN_PLUGIN_PATH), and a
 * pipeline asking for plugin NAME gets the first NAME.so in that order. So
 * a later file with the same file name is listed as shadowed, with a warning
 * naming the file that wins, and a file whose descriptor calls itself
 * something else than its file name gets a warning too: pipelines find it by
 * the file name, everything else shows the descriptor's.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "internal.h"

typedef struct entry {
  char path[PATH_MAX];
  char file_name[NAME_MAX + 1]; /* NAME of NAME.so: what pipelines ask for */
  size_t dir;                   /* index in the search order */
  plugin_lib lib;
  const struct entry *winner; /* the earlier file with the same name, or NULL */
} entry;

typedef struct listing {
  char **dirs;
  size_t n_dirs;
  entry *e;
  size_t n, cap;
} listing;

static const char *dir_role(size_t i) { return i == 0 ? "the install folder" : "MYELIN_PLUGIN_PATH"; }

/* Opens every *.so of every folder, in search order; a file that does not
 * load is a warning. Returns 0 or MYELIN_ENOMEM. */
static int scan(listing *L) {
  for (size_t i = 0; i < L->n_dirs; i++) {
    struct dirent **names;
    int n = scandir(L->dirs[i], &names, NULL, alphasort);
    int rc = 0;
    if (n < 0) fprintf(stderr, "warning: %s folder %s: %s\n", dir_role(i), L->dirs[i], strerror(errno));
    for (int j = 0; j < n; j++) {
      const char *nm = names[j]->d_name;
      size_t l = strlen(nm);
      if (!rc && l > 3 && !strcmp(nm + l - 3, ".so")) {
        if (L->n == L->cap) {
          size_t ncap = L->cap ? 2 * L->cap : 32;
          entry *ne = realloc(L->e, ncap * sizeof *ne);
          if (!ne)
            rc = MYELIN_ENOMEM;
          else
            L->e = ne, L->cap = ncap;
        }
        entry *e = rc ? NULL : &L->e[L->n];
        char err[1024];
        if (e) {
          memset(e, 0, sizeof *e);
          snprintf(e->path, sizeof e->path, "%s/%s", L->dirs[i], nm);
          snprintf(e->file_name, sizeof e->file_name, "%.*s", (int)(l - 3), nm);
          e->dir = i;
          if (plugin_open(e->path, &e->lib, err, sizeof err) == 0)
            L->n++;
          else
            fprintf(stderr, "warning: %s\n", err);
        }
      }
      free(names[j]);
    }
    if (n >= 0) free(names);
    if (rc) return rc;
  }
  /* the entries point at each other only once the array stops moving */
  for (size_t i = 0; i < L->n; i++)
    for (size_t j = 0; j < i && !L->e[i].winner; j++)
      if (!strcmp(L->e[j].file_name, L->e[i].file_name)) L->e[i].winner = &L->e[j];
  return 0;
}

static void warn(const entry *e) {
  const myelin_plugin_desc *d = e->lib.desc;
  if (e->winner)
    fprintf(stderr,
            "warning: plugin '%s': %s (%s) is shadowed by %s (%s), which is searched first "
            "(the install folder, then MYELIN_PLUGIN_PATH in order, then a pipeline's plugin_path)\n",
            e->file_name, e->path, dir_role(e->dir), e->winner->path, dir_role(e->winner->dir));
  if (strcmp(d->name, e->file_name))
    fprintf(stderr,
            "warning: %s: the descriptor names the plugin '%s', not '%s' as its file does: pipelines load it "
            "as plugin '%s'; rename the file to %s.so\n",
            e->path, d->name, e->file_name, e->file_name, d->name);
}

static void print_json(const entry *e, int first) {
  const myelin_plugin_desc *d = e->lib.desc;
  printf("%s\n  {\"name\": ", first ? "" : ",");
  json_str(stdout, d->name, strlen(d->name));
  printf(", \"version\": ");
  json_str(stdout, d->version ? d->version : "", d->version ? strlen(d->version) : 0);
  printf(", \"summary\": ");
  json_str(stdout, d->summary ? d->summary : "", d->summary ? strlen(d->summary) : 0);
  printf(", \"path\": ");
  json_str(stdout, e->path, strlen(e->path));
  printf(", \"file_name\": ");
  json_str(stdout, e->file_name, strlen(e->file_name));
  printf(", \"shadowed_by\": ");
  if (e->winner)
    json_str(stdout, e->winner->path, strlen(e->winner->path));
  else
    printf("null");
  printf(", \"abi\": [%u, %u]}", d->abi_major, d->abi_minor);
}

static void print_text(const entry *e) {
  const myelin_plugin_desc *d = e->lib.desc;
  printf("%-16s %-8s %s\n", d->name, d->version ? d->version : "?", d->summary ? d->summary : "");
  printf("%-25s %s", "", e->path);
  if (e->winner) printf(" (shadowed by %s: not used)", e->winner->path);
  printf("\n");
}

int cmd_plugins(int argc, char **argv) {
  int json = 0;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--json"))
      json = 1;
    else if (argv[i][0] == '-')
      return cli_usage_error("plugins", "unknown option '%s'", argv[i]);
    else
      return cli_usage_error("plugins", "unexpected argument '%s'", argv[i]);
  }
  listing L = {0};
  L.n_dirs = plugin_search_dirs(NULL, 0, &L.dirs);
  int rc = L.n_dirs ? scan(&L) : MYELIN_ENOMEM;
  if (rc == 0) {
    if (json) printf("[");
    for (size_t i = 0; i < L.n; i++) {
      warn(&L.e[i]);
      if (json)
        print_json(&L.e[i], i == 0);
      else
        print_text(&L.e[i]);
    }
    if (json) printf("%s]\n", L.n ? "\n" : "");
    if (!L.n) fprintf(stderr, "no plugins found\n");
  } else {
    fprintf(stderr, "myelin plugins: error: out of memory\n");
  }
  for (size_t i = 0; i < L.n; i++)
    plugin_close(&L.e[i].lib);
  for (size_t i = 0; i < L.n_dirs; i++)
    free(L.dirs[i]);
  free(L.dirs);
  free(L.e);
  return rc ? 1 : 0;
}
