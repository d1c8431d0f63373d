/*
 * monitor_render.c — what the live monitor serves (monitor.h), as text:
 * /api/stats JSON, /metrics in the Prometheus text exposition format, and
 * the WebSocket pushes of metrics, maps and spikes. Pure functions of a
 * snapshot and of messages: no I/O, no locks, tested alone.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor.h"
#include "tensor_elem.h" /* plugins/common: element i of any dtype */

/* Element i of an integer tensor (voxel indices, spike steps and units,
 * past float's 2^24), or of a float one rounded down. */
static uint64_t elem_u64(const myelin_tensor *t, size_t i) {
  switch (t->dtype) {
  case MYELIN_U4:
    return ((const uint32_t *)t->data)[i];
  case MYELIN_U8:
    return ((const uint64_t *)t->data)[i];
  case MYELIN_I4:
    return ((const int32_t *)t->data)[i] < 0 ? UINT64_MAX : (uint64_t)((const int32_t *)t->data)[i];
  case MYELIN_I8:
    return ((const int64_t *)t->data)[i] < 0 ? UINT64_MAX : (uint64_t)((const int64_t *)t->data)[i];
  default: {
    float x = tensor_elem_f32(t, i);
    return x >= 0 && x < 1.8e19f ? (uint64_t)x : UINT64_MAX;
  }
  }
}

/* ---- metrics history ----------------------------------------------------- */
static int series_name(mon_series *s, const char *name, size_t len) {
  for (size_t i = 0; i < s->n_names; i++)
    if (strlen(s->names[i]) == len && !memcmp(s->names[i], name, len)) return (int)i;
  if (len >= sizeof s->names[0] || s->n_names >= 256) return -1; /* not shown */
  size_t n = s->n_names + 1;
  char(*names)[64] = realloc(s->names, n * sizeof *names);
  if (names) s->names = names;
  double *latest = names ? realloc(s->latest, n * sizeof *latest) : NULL;
  if (latest) s->latest = latest;
  double **y = latest ? realloc(s->y, n * sizeof *y) : NULL;
  if (y) s->y = y;
  double *col = y ? malloc((s->cap ? s->cap : 1) * sizeof *col) : NULL;
  if (!col) return MYELIN_ENOMEM;
  for (size_t r = 0; r < s->cap; r++)
    col[r] = NAN;
  memcpy(s->names[s->n_names], name, len);
  s->names[s->n_names][len] = 0;
  s->latest[s->n_names] = NAN;
  s->y[s->n_names] = col;
  return (int)s->n_names++;
}

/* A new row at the end (the oldest half is dropped at MONITOR_HISTORY). */
static int series_row(mon_series *s, double x) {
  if (s->n_rows == MONITOR_HISTORY) {
    size_t keep = MONITOR_HISTORY / 2, drop = s->n_rows - keep;
    memmove(s->x, s->x + drop, keep * sizeof *s->x);
    for (size_t i = 0; i < s->n_names; i++)
      memmove(s->y[i], s->y[i] + drop, keep * sizeof *s->y[i]);
    s->n_rows = keep;
  }
  if (s->n_rows == s->cap) {
    size_t cap = s->cap ? 2 * s->cap : 64;
    if (cap > MONITOR_HISTORY) cap = MONITOR_HISTORY;
    double *nx = realloc(s->x, cap * sizeof *nx);
    if (!nx) return MYELIN_ENOMEM;
    s->x = nx;
    for (size_t i = 0; i < s->n_names; i++) {
      double *c = realloc(s->y[i], cap * sizeof *c);
      if (!c) return MYELIN_ENOMEM;
      for (size_t r = s->cap; r < cap; r++)
        c[r] = NAN;
      s->y[i] = c;
    }
    s->cap = cap;
  }
  s->x[s->n_rows] = x;
  for (size_t i = 0; i < s->n_names; i++)
    s->y[i][s->n_rows] = NAN;
  s->n_rows++;
  return 0;
}

int mon_series_add(mon_series *s, const myelin_msg *m) {
  myelin_obj values = myelin_msg_get(m, "values");
  if (myelin_obj_type_of(values) != MYELIN_OBJ_MAP) return MYELIN_EFORMAT;
  int64_t epoch = 0;
  int has_epoch = myelin_msg_int(m, "epoch", &epoch) == 0;
  s->n_msgs++;
  double x = has_epoch ? (double)epoch : (double)s->n_msgs;
  /* the messages of one epoch (train, then test) fill one row */
  int same_row = has_epoch && s->has_epoch && s->n_rows && s->x[s->n_rows - 1] == x;
  if (has_epoch && s->has_epoch && s->n_rows && x < s->x[s->n_rows - 1]) s->n_rows = 0; /* epochs restarted */
  s->has_epoch = has_epoch;
  s->epoch = epoch;
  if (!same_row && series_row(s, x)) return MYELIN_ENOMEM;
  for (size_t i = 0; i < myelin_obj_len(values); i++) {
    size_t len;
    const char *name = myelin_obj_str(myelin_obj_key_at(values, i), &len);
    double v;
    if (!name || myelin_obj_float(myelin_obj_value_at(values, i), &v)) continue; /* numbers only */
    int k = series_name(s, name, len);
    if (k == MYELIN_ENOMEM) return k;
    if (k < 0) continue;
    s->latest[k] = v;
    s->y[k][s->n_rows - 1] = v;
  }
  return 0;
}

void mon_series_free(mon_series *s) {
  for (size_t i = 0; s->y && i < s->n_names; i++)
    free(s->y[i]);
  free(s->y);
  free(s->x);
  free(s->names);
  free(s->latest);
  memset(s, 0, sizeof *s);
}

/* ---- JSON ---------------------------------------------------------------- */
static void jnum(FILE *f, double v) {
  if (isfinite(v))
    fprintf(f, "%.6g", v);
  else
    fputs("null", f); /* JSON has no NaN or infinities */
}

static void jstr(FILE *f, const char *s) { json_str(f, s, strlen(s)); }

static char *mem_close(FILE *f, char **buf) {
  int bad = ferror(f);
  if (fclose(f) || bad) {
    free(*buf);
    return NULL;
  }
  return *buf;
}

static const char *state_name(mon_state s) {
  return s == MON_STARTING ? "starting" : s == MON_RUNNING ? "running" : "finished";
}

static const char *port_name(const pipeline *p, size_t stage, int port) {
  const myelin_port_def *o = p->stages[stage].lib.desc->outputs;
  return o && port >= 0 && (size_t)port < port_count(o) ? o[port].name : "?";
}

/* Seconds between the two snapshots; 0 when there is no previous one. */
static double interval(const mon_view *v) {
  if (!v->prev || v->prev->n != v->cur->n || !v->cur->st) return 0;
  double dt = v->cur->wall - v->prev->wall;
  return dt > 0 ? dt : 0;
}

/* Per-second rate of a counter: over the last interval, else over the run. */
static double rate(const mon_view *v, double dt, uint64_t now, uint64_t before) {
  if (dt > 0) return now >= before ? (double)(now - before) / dt : 0;
  return v->cur->wall > 0 ? (double)now / v->cur->wall : 0;
}

char *monitor_stats_json(const mon_view *v) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  const pipeline *p = v->p;
  double dt = interval(v);
  fputs("{\"pipeline\":", f);
  jstr(f, p->name ? p->name : "");
  fputs(",\"file\":", f);
  jstr(f, p->file ? p->file : "");
  fprintf(f, ",\"state\":\"%s\",\"exit_code\":", state_name(v->state));
  if (v->state == MON_FINISHED)
    fprintf(f, "%d", v->exit_code);
  else
    fputs("null", f);
  fputs(",\"elapsed\":", f);
  jnum(f, v->cur ? v->cur->wall : 0);
  fputs(",\"interval\":", f);
  jnum(f, dt);
  fputs(",\"stages\":[", f);
  for (size_t i = 0; i < p->n; i++) {
    const stage_def *d = &p->stages[i];
    const stage_stats *t = v->cur && i < v->cur->n ? &v->cur->st[i] : NULL;
    const stage_stats *b = dt > 0 ? &v->prev->st[i] : NULL;
    fputs(i ? ",{\"id\":" : "{\"id\":", f);
    jstr(f, d->id);
    fputs(",\"plugin\":", f);
    jstr(f, d->plugin);
    if (!t) {
      fputc('}', f);
      continue;
    }
    fprintf(f, ",\"inputs\":%s,\"msgs_in\":%" PRIu64 ",\"msgs_out\":%" PRIu64 ",\"bytes_out\":%" PRIu64,
            t->has_inputs ? "true" : "false", t->msgs_in, t->msgs_out, t->bytes_out);
    fputs(",\"rate_in\":", f);
    jnum(f, rate(v, dt, t->msgs_in, b ? b->msgs_in : 0));
    fputs(",\"rate_out\":", f);
    jnum(f, rate(v, dt, t->msgs_out, b ? b->msgs_out : 0));
    fprintf(f, ",\"queue\":%zu,\"queue_capacity\":%zu,\"queue_high_water\":%zu",
            t->has_inputs ? t->queue_fill : 0, t->queue_cap, t->has_inputs ? t->queue_hiwater : 0);
    fputs(",\"busy\":", f);
    jnum(f, dt > 0 ? (t->cpu - b->cpu) / dt : t->busy);
    fputs(",\"busy_run\":", f);
    jnum(f, t->busy);
    fputs(",\"cpu_seconds\":", f);
    jnum(f, t->cpu);
    fputs(",\"counters\":{", f);
    for (size_t c = 0; c < t->n_counters; c++) {
      if (c) fputc(',', f);
      json_str(f, t->counter_names[c], strnlen(t->counter_names[c], sizeof t->counter_names[c]));
      fprintf(f, ":%" PRId64, t->counter_values[c]);
    }
    fputs("}}", f);
  }
  fputs("],\"metrics\":[", f);
  for (size_t k = 0; k < v->n_series; k++) {
    const mon_series *s = &v->series[k];
    fputs(k ? ",{\"edge\":" : "{\"edge\":", f);
    char edge[256];
    snprintf(edge, sizeof edge, "%s.%s", p->stages[s->stage].id, port_name(p, s->stage, s->port));
    jstr(f, edge);
    fprintf(f, ",\"messages\":%" PRIu64 ",\"epoch\":", s->n_msgs);
    if (s->has_epoch)
      fprintf(f, "%" PRId64, s->epoch);
    else
      fputs("null", f);
    fputs(",\"values\":{", f);
    for (size_t i = 0; i < s->n_names; i++) {
      if (i) fputc(',', f);
      jstr(f, s->names[i]);
      fputc(':', f);
      jnum(f, s->latest[i]);
    }
    fputs("}}", f);
  }
  fputs("],\"edges\":[", f);
  for (size_t k = 0; k < v->n_edges; k++) {
    const mon_edge *e = &v->edges[k];
    char edge[256];
    snprintf(edge, sizeof edge, "%s.%s", p->stages[e->stage].id, port_name(p, e->stage, e->port));
    fputs(k ? ",{\"edge\":" : "{\"edge\":", f);
    jstr(f, edge);
    fputs(",\"kind\":", f);
    const char *kinds = p->stages[e->stage].out_kinds[e->port];
    if (!strcmp(kinds, "*")) /* what it carried so far */
      fprintf(f, "\"%s%s%s%s%s\"", e->seen & 1 ? "metrics" : "", (e->seen & 1) && (e->seen & 6) ? "|" : "",
              e->seen & 2 ? "map" : "", (e->seen & 2) && (e->seen & 4) ? "|" : "",
              e->seen & 4 ? "spikes" : "");
    else
      jstr(f, kinds);
    fputc('}', f);
  }
  fputs("]}", f);
  return mem_close(f, &buf);
}

char *monitor_metrics_json(const mon_view *v) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  fputs("{\"type\":\"metrics\",\"series\":[", f);
  for (size_t k = 0; k < v->n_series; k++) {
    const mon_series *s = &v->series[k];
    char edge[256];
    snprintf(edge, sizeof edge, "%s.%s", v->p->stages[s->stage].id, port_name(v->p, s->stage, s->port));
    fputs(k ? ",{\"edge\":" : "{\"edge\":", f);
    jstr(f, edge);
    fprintf(f, ",\"x_label\":\"%s\",\"x\":[", s->has_epoch ? "epoch" : "message");
    for (size_t r = 0; r < s->n_rows; r++) {
      if (r) fputc(',', f);
      jnum(f, s->x[r]);
    }
    fputs("],\"names\":[", f);
    for (size_t i = 0; i < s->n_names; i++) {
      if (i) fputc(',', f);
      jstr(f, s->names[i]);
    }
    fputs("],\"y\":[", f);
    for (size_t i = 0; i < s->n_names; i++) {
      fputs(i ? ",[" : "[", f);
      for (size_t r = 0; r < s->n_rows; r++) {
        if (r) fputc(',', f);
        jnum(f, s->y[i][r]);
      }
      fputc(']', f);
    }
    fputs("]}", f);
  }
  fputs("]}", f);
  return mem_close(f, &buf);
}

/* ---- Prometheus text format 0.0.4 ---------------------------------------- */
/* A label value: backslash, double quote and line feed escaped. */
static void plabel(FILE *f, const char *s, size_t n) {
  fputc('"', f);
  for (size_t i = 0; i < n && s[i]; i++) {
    if (s[i] == '\\' || s[i] == '"')
      fputc('\\', f), fputc(s[i], f);
    else if (s[i] == '\n')
      fputs("\\n", f);
    else
      fputc(s[i], f);
  }
  fputc('"', f);
}

static void pnum(FILE *f, double v) {
  if (isnan(v))
    fputs("NaN", f);
  else if (isinf(v))
    fputs(v > 0 ? "+Inf" : "-Inf", f);
  else
    fprintf(f, "%.10g", v);
}

static void phead(FILE *f, const char *name, const char *type, const char *help) {
  fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void pstage(FILE *f, const char *name, const stage_def *d) {
  fprintf(f, "%s{stage=", name);
  plabel(f, d->id, strlen(d->id));
  fputs(",plugin=", f);
  plabel(f, d->plugin, strlen(d->plugin));
  fputs("} ", f);
}

char *monitor_prometheus(const mon_view *v) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  const pipeline *p = v->p;
  const run_stats *cur = v->cur && v->cur->st && v->cur->n == p->n ? v->cur : NULL;
  double dt = interval(v);
  phead(f, "myelin_run_info", "gauge", "The pipeline being run (always 1).");
  fputs("myelin_run_info{pipeline=", f);
  plabel(f, p->name ? p->name : "", p->name ? strlen(p->name) : 0);
  fputs(",file=", f);
  plabel(f, p->file ? p->file : "", p->file ? strlen(p->file) : 0);
  fputs("} 1\n", f);
  phead(f, "myelin_run_running", "gauge", "1 while the stages run, 0 before they start and once they ended.");
  fprintf(f, "myelin_run_running %d\n", v->state == MON_RUNNING);
  phead(f, "myelin_run_elapsed_seconds", "gauge", "Seconds since the stages started.");
  fputs("myelin_run_elapsed_seconds ", f);
  pnum(f, cur ? cur->wall : 0);
  fputc('\n', f);
  if (v->state == MON_FINISHED) {
    phead(f, "myelin_run_exit_code", "gauge", "The run's exit code (0 success, 1 error, 130 interrupted).");
    fprintf(f, "myelin_run_exit_code %d\n", v->exit_code);
  }
  if (cur) {
    static const struct {
      const char *name, *type, *help;
    } fam[] = {
        {"myelin_stage_messages_in_total", "counter", "Messages a stage received."},
        {"myelin_stage_messages_out_total", "counter", "Messages a stage emitted."},
        {"myelin_stage_bytes_out_total", "counter", "Bytes of the messages a stage emitted."},
        {"myelin_stage_queue_messages", "gauge", "Messages waiting in a stage's input queue."},
        {"myelin_stage_queue_capacity_messages", "gauge", "Capacity of a stage's input queue."},
        {"myelin_stage_queue_high_water_messages", "gauge", "Most messages a stage's input queue held."},
        {"myelin_stage_cpu_seconds_total", "counter", "CPU time of a stage's thread."},
        {"myelin_stage_busy_ratio", "gauge",
         "CPU time of a stage's thread per wall second, over the last sample."},
    };
    for (size_t k = 0; k < sizeof fam / sizeof *fam; k++) {
      phead(f, fam[k].name, fam[k].type, fam[k].help);
      for (size_t i = 0; i < p->n; i++) {
        const stage_stats *t = &cur->st[i];
        if (k >= 3 && k <= 5 && !t->has_inputs) continue; /* a source has no queue */
        pstage(f, fam[k].name, &p->stages[i]);
        switch (k) {
        case 0:
          fprintf(f, "%" PRIu64 "\n", t->msgs_in);
          break;
        case 1:
          fprintf(f, "%" PRIu64 "\n", t->msgs_out);
          break;
        case 2:
          fprintf(f, "%" PRIu64 "\n", t->bytes_out);
          break;
        case 3:
          fprintf(f, "%zu\n", t->queue_fill);
          break;
        case 4:
          fprintf(f, "%zu\n", t->queue_cap);
          break;
        case 5:
          fprintf(f, "%zu\n", t->queue_hiwater);
          break;
        case 6:
          pnum(f, t->cpu), fputc('\n', f);
          break;
        default:
          pnum(f, dt > 0 ? (t->cpu - v->prev->st[i].cpu) / dt : t->busy), fputc('\n', f);
          break;
        }
      }
    }
    int head = 0;
    for (size_t i = 0; i < p->n; i++)
      for (size_t c = 0; c < cur->st[i].n_counters; c++) {
        if (!head++) phead(f, "myelin_stage_counter", "gauge", "A plugin's own counter (host->counter_add).");
        fputs("myelin_stage_counter{stage=", f);
        plabel(f, p->stages[i].id, strlen(p->stages[i].id));
        fputs(",plugin=", f);
        plabel(f, p->stages[i].plugin, strlen(p->stages[i].plugin));
        fputs(",name=", f);
        plabel(f, cur->st[i].counter_names[c], sizeof cur->st[i].counter_names[c]);
        fprintf(f, "} %" PRId64 "\n", cur->st[i].counter_values[c]);
      }
  }
  int head = 0;
  for (size_t k = 0; k < v->n_series; k++) {
    const mon_series *s = &v->series[k];
    const char *id = p->stages[s->stage].id, *port = port_name(p, s->stage, s->port);
    for (size_t i = 0; i < s->n_names; i++) {
      if (!head++)
        phead(f, "myelin_metrics_value", "gauge", "The latest value of each name in a metrics stream.");
      fputs("myelin_metrics_value{stage=", f);
      plabel(f, id, strlen(id));
      fputs(",port=", f);
      plabel(f, port, strlen(port));
      fputs(",name=", f);
      plabel(f, s->names[i], strlen(s->names[i]));
      fputs("} ", f);
      pnum(f, s->latest[i]);
      fputc('\n', f);
    }
  }
  return mem_close(f, &buf);
}

/* ---- maps ---------------------------------------------------------------- */
#define MAP_MAX_VOXELS ((size_t)512 * 512 * 512)

static char *error_json(const char *type, const char *edge, const char *msg) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  fprintf(f, "{\"type\":\"%s\",\"edge\":", type);
  jstr(f, edge);
  fputs(",\"error\":", f);
  jstr(f, msg);
  fputc('}', f);
  return mem_close(f, &buf);
}

/* The volume geometry of a map: dims and voxels (flat C-order indices into
 * the x, y, z grid), or 0 when it has none (an atlas, a surface). */
static int map_grid(const myelin_msg *m, size_t V, int64_t dims[3], myelin_tensor *vox) {
  myelin_obj g = myelin_msg_get(m, "geometry"), d = myelin_obj_get(g, "dims");
  if (myelin_obj_len(d) != 3 || myelin_obj_tensor(myelin_obj_get(g, "voxels"), vox) || vox->count != V)
    return 0;
  for (int i = 0; i < 3; i++)
    if (myelin_obj_int(myelin_obj_at(d, (size_t)i), &dims[i]) || dims[i] < 1 || dims[i] > 4096) return 0;
  return (size_t)(dims[0] * dims[1] * dims[2]) <= MAP_MAX_VOXELS;
}

static void slice_json(FILE *f, const float *vol, const int64_t d[3], int axis, int64_t at) {
  /* the two other axes: rows = the second, columns = the first */
  int a = axis == 0 ? 1 : 0, b = axis == 2 ? 1 : 2;
  fprintf(f, "{\"axis\":%d,\"at\":%" PRId64 ",\"w\":%" PRId64 ",\"h\":%" PRId64 ",\"v\":[", axis, at, d[a],
          d[b]);
  for (int64_t j = 0; j < d[b]; j++)
    for (int64_t i = 0; i < d[a]; i++) {
      int64_t idx[3];
      idx[axis] = at, idx[a] = i, idx[b] = j;
      if (i || j) fputc(',', f);
      float x = vol[(idx[0] * d[1] + idx[1]) * d[2] + idx[2]];
      if (isfinite(x))
        fprintf(f, "%.4g", x);
      else
        fputs("null", f);
    }
  fputs("]}", f);
}

char *monitor_map_json(const myelin_msg *m, const char *edge) {
  myelin_tensor t;
  if (myelin_msg_tensor(m, "data", &t) || t.ndim < 1 || !t.count)
    return error_json("map", edge, "the map has no data tensor");
  size_t V = (size_t)t.shape[t.ndim - 1], R = t.count / (V ? V : 1);
  if (!V) return error_json("map", edge, "the map has no values");
  /* [R, V]: the mean of the rows (one per subject), as the figure draws it */
  float *row = malloc(V * sizeof *row);
  if (!row) return NULL;
  for (size_t k = 0; k < V; k++) {
    double sum = 0;
    size_t n = 0;
    for (size_t r = 0; r < R; r++) {
      float x = tensor_elem_f32(&t, r * V + k);
      if (isfinite(x)) sum += x, n++;
    }
    row[k] = n ? (float)(sum / (double)n) : NAN;
  }
  char stat[64];
  myelin_msg_text(m, "stat", stat, sizeof stat);
  int64_t d[3];
  myelin_tensor vox;
  float *vol = NULL;
  int volume = map_grid(m, V, d, &vox);
  if (!volume && t.ndim == 3 && !myelin_obj_exists(myelin_msg_get(m, "geometry")) &&
      t.count <= MAP_MAX_VOXELS) { /* a bare 3-D array */
    volume = 1;
    for (int i = 0; i < 3; i++)
      d[i] = t.shape[i];
    vol = row, row = NULL;
  } else if (volume) {
    size_t n = (size_t)(d[0] * d[1] * d[2]);
    if (!(vol = malloc(n * sizeof *vol))) {
      free(row);
      return NULL;
    }
    for (size_t i = 0; i < n; i++)
      vol[i] = NAN;
    for (size_t k = 0; k < V; k++) {
      uint64_t c = elem_u64(&vox, k);
      if (c < n) vol[c] = row[k];
    }
  }
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) {
    free(row);
    free(vol);
    return NULL;
  }
  fputs("{\"type\":\"map\",\"edge\":", f);
  jstr(f, edge);
  fputs(",\"stat\":", f);
  jstr(f, stat);
  if (volume) {
    size_t n = (size_t)(d[0] * d[1] * d[2]), best = 0;
    double vmax = 0;
    for (size_t i = 0; i < n; i++)
      if (isfinite(vol[i]) && fabs(vol[i]) > vmax) vmax = fabs(vol[i]), best = i;
    int64_t cut[3] = {(int64_t)(best / (size_t)(d[1] * d[2])), (int64_t)(best / (size_t)d[2] % (size_t)d[1]),
                      (int64_t)(best % (size_t)d[2])};
    fprintf(f,
            ",\"dims\":[%" PRId64 ",%" PRId64 ",%" PRId64 "],\"cut\":[%" PRId64 ",%" PRId64 ",%" PRId64 "]",
            d[0], d[1], d[2], cut[0], cut[1], cut[2]);
    fputs(",\"vmax\":", f);
    jnum(f, vmax);
    fputs(",\"slices\":[", f);
    for (int axis = 0; axis < 3; axis++) {
      if (axis) fputc(',', f);
      slice_json(f, vol, d, axis, cut[axis]);
    }
    fputc(']', f);
  } else { /* parcels, a surface: the values in order */
    size_t shown = V < 100000 ? V : 100000;
    double vmax = 0;
    for (size_t k = 0; k < V; k++)
      if (isfinite(row[k]) && fabs(row[k]) > vmax) vmax = fabs(row[k]);
    fprintf(f, ",\"count\":%zu,\"vmax\":", V);
    jnum(f, vmax);
    fputs(",\"values\":[", f);
    for (size_t k = 0; k < shown; k++) {
      if (k) fputc(',', f);
      jnum(f, row[k]);
    }
    fputc(']', f);
  }
  fputc('}', f);
  free(row);
  free(vol);
  return mem_close(f, &buf);
}

/* ---- spikes -------------------------------------------------------------- */
/* A JSON array of the first e elements of an integer tensor, written in
 * blocks (a push carries up to tens of thousands of them, 4 times a second:
 * one fprintf each would be most of the monitor thread's time). */
static void u64_array(FILE *f, const myelin_tensor *t, size_t e) {
  char buf[4096];
  size_t n = 0;
  buf[n++] = '[';
  for (size_t k = 0; k < e; k++) {
    if (n > sizeof buf - 24) fwrite(buf, 1, n, f), n = 0;
    if (k) buf[n++] = ',';
    char digits[20];
    size_t d = 0;
    uint64_t v = elem_u64(t, k);
    do
      digits[d++] = (char)('0' + v % 10);
    while (v /= 10);
    while (d)
      buf[n++] = digits[--d];
  }
  buf[n++] = ']';
  fwrite(buf, 1, n, f);
}

char *monitor_spikes_json(myelin_msg *const *msgs, size_t n, const char *edge, size_t max_events) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  fputs("{\"type\":\"spikes\",\"edge\":", f);
  jstr(f, edge);
  fputs(",\"msgs\":[", f);
  size_t budget = max_events, truncated = 0, shown = 0;
  for (size_t i = 0; i < n; i++) {
    const myelin_msg *m = msgs[i];
    myelin_tensor st, un;
    int64_t units = 0, steps = 0;
    uint64_t seq = 0;
    double dt = 0;
    if (strcmp(myelin_msg_kind(m), "spikes") || myelin_msg_int(m, "n", &units) ||
        myelin_msg_int(m, "steps", &steps) || myelin_msg_tensor(m, "step", &st) ||
        myelin_msg_tensor(m, "unit", &un) || st.count != un.count)
      continue; /* not a spikes message this view can read */
    myelin_msg_uint(m, "seq", &seq);
    myelin_msg_float(m, "dt", &dt);
    size_t e = st.count < budget ? st.count : budget;
    truncated += st.count - e;
    budget -= e;
    fprintf(f, "%s{\"seq\":%" PRIu64 ",\"n\":%" PRId64 ",\"steps\":%" PRId64 ",\"dt\":", shown++ ? "," : "",
            seq, units, steps);
    jnum(f, dt);
    fputs(",\"step\":", f);
    u64_array(f, &st, e);
    fputs(",\"unit\":", f);
    u64_array(f, &un, e);
    fputc('}', f);
  }
  fprintf(f, "],\"truncated\":%zu}", truncated);
  return mem_close(f, &buf);
}
