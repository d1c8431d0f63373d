/*
 * path_template.h — output paths with {key} placeholders, shared by the
 * image sinks (nifti_sink, gifti_sink); header-only.
 *
 * A key is a message field ({subject}, {task}, {run}, {stat}, {seq}) or one
 * the sink supplies itself (gifti_sink's {hemi}: one file per hemisphere).
 * A missing field expands to "none" ({seq}: the sink's file count), and '/'
 * in a value becomes '_' so a value never adds a folder.
 */
#ifndef MYELIN_PLUGIN_PATH_TEMPLATE_H
#define MYELIN_PLUGIN_PATH_TEMPLATE_H

#include <stdio.h>
#include <string.h>

#include "myelin/msg.h"

/* Length of the key at p ("{key}...") when it is one of keys (NULL-terminated)
 * or extra_key; 0 otherwise. */
static inline size_t path_template_key(const char *p, const char *const *keys, const char *extra_key,
                                       const char **which) {
  if (*p != '{') return 0;
  for (int k = -1; k < 0 || keys[k]; k++) {
    const char *key = k < 0 ? extra_key : keys[k];
    if (!key) continue;
    size_t kl = strlen(key);
    if (!strncmp(p + 1, key, kl) && p[1 + kl] == '}') {
      *which = key;
      return kl;
    }
  }
  return 0;
}

/* Expands tmpl for message m into out (n bytes); -1 when it does not fit. */
static inline int path_template_expand(const char *tmpl, const char *const *keys, const myelin_msg *m,
                                       const char *extra_key, const char *extra_val, unsigned long long files,
                                       char *out, size_t n) {
  size_t o = 0;
  for (const char *p = tmpl; *p;) {
    char val[256] = "";
    const char *key = NULL;
    size_t kl = path_template_key(p, keys, extra_key, &key);
    if (kl) {
      if (extra_key && key == extra_key)
        snprintf(val, sizeof val, "%s", extra_val ? extra_val : "");
      else
        myelin_msg_text(m, key, val, sizeof val);
      if (!val[0] && !strcmp(key, "seq")) snprintf(val, sizeof val, "%llu", files);
      if (!val[0]) snprintf(val, sizeof val, "none");
      for (char *c = val; *c; c++)
        if (*c == '/') *c = '_';
      p += kl + 2;
    } else {
      val[0] = *p++;
      val[1] = 0;
    }
    size_t vl = strlen(val);
    if (o + vl >= n) return -1;
    memcpy(out + o, val, vl);
    o += vl;
  }
  out[o] = 0;
  return 0;
}

/* 0 when every '{' of tmpl opens a known key. */
static inline int path_template_check(const char *tmpl, const char *const *keys, const char *extra_key) {
  for (const char *b = strchr(tmpl, '{'); b; b = strchr(b + 1, '{')) {
    const char *key;
    if (!path_template_key(b, keys, extra_key, &key)) return -1;
  }
  return 0;
}

#endif
