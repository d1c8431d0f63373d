/*
 * loihi_export — a trained float network leaves myelin as files that Intel's
 * toolchain and the NIR ecosystem load.
 *
 * The stage keeps the latest `network` message and, at end of stream,
 * quantizes it to Loihi's CUBA registers (loihi_quant.c) and writes under
 * the prefix `path`:
 *   PREFIX.net     lava-dl netx HDF5 (netx.hdf5.Network reads it)
 *   PREFIX.nir     NIR HDF5 (nir.read reads it)
 *   PREFIX.tar.gz  both files + manifest.json + README.txt (libarchive)
 * Every file is written under a temporary name and renamed when complete.
 * The .net file is read back and compared integer for integer before the
 * bundle is made, so a file that would not round-trip is never shipped.
 *
 * If `test` spikes are connected, they are held compactly until the network
 * arrives and then run twice: through the float model (loihi_fsim) and
 * through the bit-accurate simulator on the quantized network (loihi_sim);
 * both accuracies go into the manifest and the `metrics` message, side by
 * side, so the cost of quantization is visible.
 */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <myelin/io.h>
#include <myelin/plugin.h>

#include "loihi.h"
#include "loihi_msg.h"

enum { IN_NETWORK = 0, IN_TEST = 1 };
enum { OUT_METRICS = 0 };

typedef struct exstate {
  const myelin_host *host;
  myelin_stage *st;
  char *prefix, *pipeline;
  double dt;
  int bundle;
  int64_t max_pending;
  int have_net, exported;
  loihi_fnet fnet;
  loihi_store test;
} exstate;

typedef struct results {
  char path[3][4096];
  long bytes[3];
  int tested;
  double float_acc, quant_acc;
  size_t test_samples;
  /* activity of the quantized network (loihi_sim) over every test sample, and
   * given no input: spikes per neuron per input step, synaptic events per sample */
  int active;
  double spikes_per_neuron_step, synops_per_sample, silent_spikes_per_neuron_step;
  loihi_qinfo *info;
} results;

/* ---- evaluation ---------------------------------------------------------- */

static int evaluate(exstate *s, const loihi_net *q, results *r) {
  char err[512];
  loihi_fsim fs;
  loihi_sim is;
  if (loihi_fsim_init(&fs, &s->fnet, err, sizeof err) != 0) return s->host->error(s->st, "%s", err);
  if (loihi_sim_init(&is, q, err, sizeof err) != 0) {
    loihi_fsim_free(&fs);
    return s->host->error(s->st, "%s", err);
  }
  size_t cap = 0, labelled = 0, fc = 0, qc = 0, samples = 0;
  double spikes = 0, synops = 0, steps = 0;
  uint32_t *st = NULL, *un = NULL;
  int32_t *cf = calloc((size_t)is.n_out, sizeof(int32_t)), *ci = calloc((size_t)is.n_out, sizeof(int32_t));
  int rc = cf && ci ? 0 : s->host->error(s->st, "out of memory");
  for (size_t i = 0; rc == 0 && i < s->test.len; i++) {
    const loihi_sample *x = &s->test.items[i];
    if (x->n != is.n_in) {
      rc = s->host->error(s->st, "test: sample %zu has n = %lld but the network has %d inputs", i,
                          (long long)x->n, is.n_in);
      break;
    }
    if (x->n_events > cap) {
      cap = x->n_events;
      uint32_t *a = realloc(st, cap * 4), *b = a ? realloc(un, cap * 4) : NULL;
      if (a) st = a;
      if (b) un = b;
      if (!a || !b) {
        rc = s->host->error(s->st, "out of memory");
        break;
      }
    }
    loihi_sample_events(x, st, un);
    if (loihi_fsim_sample(&fs, st, un, x->n_events, (int)x->steps, cf, err, sizeof err) ||
        loihi_sim_sample(&is, st, un, x->n_events, (int)x->steps, ci, err, sizeof err)) {
      rc = s->host->error(s->st, "test: %s", err);
      break;
    }
    samples++;
    spikes += (double)is.spikes;
    synops += (double)is.synops;
    steps += (double)x->steps;
    if (!x->has_label) continue;
    labelled++;
    fc += loihi_argmax(cf, fs.n_out) == x->label;
    qc += loihi_argmax(ci, is.n_out) == x->label;
  }
  double neurons = 0;
  for (int l = 0; l < q->n_layers; l++)
    neurons += q->layers[l].n_out;
  if (rc == 0 && samples && neurons > 0) {
    int T = (int)(steps / (double)samples + 0.5);
    r->active = 1;
    r->spikes_per_neuron_step = spikes / (steps * neurons);
    r->synops_per_sample = synops / (double)samples;
    if (loihi_sim_sample(&is, NULL, NULL, 0, T, ci, err, sizeof err) == 0)
      r->silent_spikes_per_neuron_step = (double)is.spikes / ((double)T * neurons);
  }
  free(st);
  free(un);
  free(cf);
  free(ci);
  loihi_fsim_free(&fs);
  loihi_sim_free(&is);
  if (rc == 0 && labelled) {
    r->tested = 1;
    r->test_samples = labelled;
    r->float_acc = (double)fc / (double)labelled;
    r->quant_acc = (double)qc / (double)labelled;
  }
  return rc;
}

/* ---- files --------------------------------------------------------------- */

static int write_hdf5(exstate *s, const char *path, const loihi_net *q, int nir) {
  char err[600];
  myelin_atomic_file af = {0};
  if (myelin_atomic_open(&af, path, err, sizeof err) != 0) return s->host->error(s->st, "%s", err);
  int rc = nir ? loihi_nir_write(af.tmp_path, q, s->dt, err, sizeof err)
               : loihi_netx_write(af.tmp_path, q, err, sizeof err);
  if (rc) {
    myelin_atomic_abort(&af);
    return s->host->error(s->st, "%s", err);
  }
  if (myelin_atomic_commit(&af, 0, err, sizeof err) != 0) return s->host->error(s->st, "%s", err);
  return 0;
}

/* The written .net must give back exactly the integers we quantized. */
static int verify_netx(exstate *s, const char *path, const loihi_net *q) {
  char err[600];
  loihi_net back;
  if (loihi_netx_read(path, &back, err, sizeof err) != 0)
    return s->host->error(s->st, "re-reading %s: %s", path, err);
  int same = back.n_layers == q->n_layers;
  for (int l = 0; same && l < q->n_layers; l++) {
    const loihi_layer *a = &q->layers[l], *b = &back.layers[l];
    same = a->n_in == b->n_in && a->n_out == b->n_out && a->i_decay == b->i_decay &&
           a->v_decay == b->v_decay && a->vth_mant == b->vth_mant && !a->bias == !b->bias &&
           memcmp(a->weight, b->weight, sizeof(int32_t) * (size_t)a->n_in * (size_t)a->n_out) == 0 &&
           (!a->bias || memcmp(a->bias, b->bias, sizeof(int32_t) * (size_t)a->n_out) == 0);
  }
  loihi_net_free(&back);
  return same ? 0 : s->host->error(s->st, "%s does not read back identically", path);
}

static void json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\')
      fprintf(f, "\\%c", c);
    else if (c == '\n')
      fputs("\\n", f);
    else if (c < 0x20)
      fprintf(f, "\\u%04x", c);
    else
      fputc(c, f);
  }
  fputc('"', f);
}

static char *slurp(const char *path, size_t max) {
  uint8_t *buf = NULL;
  size_t len = 0;
  char err[256];
  if (myelin_read_file(path, max, &buf, &len, err, sizeof err) != 0) return NULL;
  char *s = realloc(buf, len + 1);
  if (!s) {
    free(buf);
    return NULL;
  }
  s[len] = 0;
  return s;
}

static const char *base_name(const char *p) {
  const char *b = strrchr(p, '/');
  return b ? b + 1 : p;
}

static char *manifest_text(exstate *s, const loihi_net *q, const results *r) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  fprintf(f, "{\n  \"format\": \"myelin loihi_export 1\",\n  \"files\": {\"netx\": ");
  json_str(f, base_name(r->path[0]));
  fprintf(f, ", \"nir\": ");
  json_str(f, base_name(r->path[1]));
  fprintf(f,
          "},\n  \"nir_version\": \"%s\",\n  \"dt\": %.17g,\n  \"neuron\": {\"model\": \"CUBA\", "
          "\"vth\": %.17g, \"cdecay\": %.17g, \"vdecay\": %.17g},\n  \"steps\": %d,\n",
          LOIHI_NIR_VERSION, s->dt, s->fnet.vth, s->fnet.cdecay, s->fnet.vdecay, s->fnet.steps);
  fprintf(f, "  \"layer_sizes\": [%d", q->layers[0].n_in);
  for (int l = 0; l < q->n_layers; l++)
    fprintf(f, ", %d", q->layers[l].n_out);
  fprintf(f, "],\n  \"layers\": [\n");
  for (int l = 0; l < q->n_layers; l++) {
    const loihi_layer *L = &q->layers[l];
    /* one name per layer in all three files: the NIR nodes fc<l>/lif<l> of
     * netx's /layer/<l>; the learner's own name is kept as source_name */
    fprintf(
        f,
        "    {\"name\": \"fc%d\", \"netx\": \"/layer/%d\", \"nir\": [\"fc%d\", \"lif%d\"], \"source_name\": ",
        l, l, l, l);
    json_str(f, s->fnet.layers[l].name);
    fprintf(f,
            ", \"in\": %d, \"out\": %d, \"scale\": %.17g, \"float_weight_absmax\": %.9g, "
            "\"weight_min\": %lld, \"weight_max\": %lld, \"iDecay\": %lld, \"vDecay\": %lld, "
            "\"vThMant\": %lld, \"bias\": %s}%s\n",
            L->n_in, L->n_out, r->info[l].scale, r->info[l].w_absmax, (long long)r->info[l].w_min,
            (long long)r->info[l].w_max, (long long)L->i_decay, (long long)L->v_decay, (long long)L->vth_mant,
            L->bias ? "true" : "false", l + 1 < q->n_layers ? "," : "");
  }
  fprintf(f, "  ],\n  \"quantization\": \"W = clamp(round(scale*w*32)*2, -256, 254); vThMant = "
             "trunc(scale*vth*64); bias = round(scale*b*64/(1-cdecay)); iDecay = round((1-cdecay)*4096); "
             "vDecay = round((1-vdecay)*4096)\",\n");
  if (r->tested)
    fprintf(f, "  \"test\": {\"samples\": %zu, \"float_accuracy\": %.6f, \"quantized_accuracy\": %.6f},\n",
            r->test_samples, r->float_acc, r->quant_acc);
  else
    fprintf(f, "  \"test\": null,\n");
  if (r->active)
    fprintf(f,
            "  \"activity\": {\"spikes_per_neuron_step\": %.6g, \"synops_per_sample\": %.6g, "
            "\"silent_spikes_per_neuron_step\": %.6g},\n",
            r->spikes_per_neuron_step, r->synops_per_sample, r->silent_spikes_per_neuron_step);
  else
    fprintf(f, "  \"activity\": null,\n");
  fprintf(f, "  \"source\": {\"stage\": ");
  json_str(f, s->host->stage_id(s->st));
  fprintf(f, ", \"pipeline_dir\": ");
  json_str(f, s->host->pipeline_dir(s->st));
  fprintf(f, ", \"pipeline\": ");
  char *yaml = s->pipeline && *s->pipeline ? slurp(s->pipeline, 1 << 20) : NULL;
  if (s->pipeline && *s->pipeline) {
    fprintf(f, "{\"path\": ");
    json_str(f, s->pipeline);
    fprintf(f, ", \"text\": ");
    json_str(f, yaml ? yaml : "");
    fprintf(f, "}");
  } else {
    fprintf(f, "null");
  }
  free(yaml);
  fprintf(f, "}\n}\n");
  fclose(f);
  return text;
}

static char *readme_text(const loihi_net *q, const results *r, double dt) {
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return NULL;
  const char *net = base_name(r->path[0]), *nir = base_name(r->path[1]);
  fprintf(f,
          "Dense CUBA-LIF spiking network exported by myelin's loihi_export.\n\n"
          "Layers: %d inputs",
          q->layers[0].n_in);
  for (int l = 0; l < q->n_layers; l++)
    fprintf(f, " -> %d", q->layers[l].n_out);
  fprintf(f,
          " (CUBA neurons, 8-bit weights, reset to 0).\n"
          "Input: binary spikes, one time step = %g s. Prediction = argmax of output spike\n"
          "counts over the input steps plus one flush step per layer.\n\n"
          "Lava / lava-dl (netx):\n"
          "    from lava.lib.dl import netx\n"
          "    net = netx.hdf5.Network(net_config='%s')\n"
          "    # connect a spike source to net.inp and a sink to net.out, then run with a\n"
          "    # Loihi2SimCfg(select_tag='fixed_pt') or on Loihi hardware\n\n"
          "NIR (neuromorphs/NIR; snnTorch, Norse, Spyx, Lava-NIR, SpiNNaker2, ...):\n"
          "    import nir\n"
          "    graph = nir.read('%s')   # nodes: input, fc<i> (Affine), lif<i> (CubaLIF), output\n"
          "    dt = float(graph.metadata['dt'])   # seconds per step the time constants assume\n"
          "    # snnTorch (needs nirtorch):\n"
          "    #   from snntorch.import_nir import import_from_nir\n"
          "    #   net = import_from_nir(graph)   # no dt argument: it assumes dt = 1e-4\n"
          "    #   out, state = net(x_t)          # once per time step, in order\n"
          "    # It refuses a file whose r is not tau_mem/1e-4 (\"r not supported in\n"
          "    # CubaLIF\"): export with dt = 1e-4 (the default) for snnTorch.\n"
          "    # Norse:  import norse.torch; net = norse.torch.from_nir(graph, dt=dt)\n\n"
          "Units in the NIR file follow NIR's Lava examples: tau = dt*4096/decay,\n"
          "r = tau_mem/dt, w_in = tau_syn/dt, v_threshold = vThMant/64, weight = W/64.\n"
          "Stepped at dt this is Loihi's CUBA neuron: current u = (1 - iDecay/4096) u +\n"
          "W x/64 + b, voltage v = (1 - vDecay/4096) v + u, spike when v > vThMant/64,\n"
          "then v = 0 (snnTorch's Synaptic neuron, threshold unscaled since\n"
          "w_in*dt/tau_syn = 1). Spikes cross all layers in one step there; Loihi adds\n"
          "a step per layer, so count its outputs over the input steps plus one per layer.\n"
          "Loihi's bias is added to v; NIR's importers allow no v_leak, so it is written\n"
          "as the Affine bias with the same steady state (first steps differ slightly).\n"
          "manifest.json lists layer sizes, quantization scales, the source pipeline and\n"
          "the float and quantized test accuracies.\n",
          dt, net, nir);
  fclose(f);
  return text;
}

static long file_size(const char *path, int wanted) {
  struct stat sb;
  return wanted && stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static int add_entry(struct archive *a, const char *name, const void *data, size_t len) {
  struct archive_entry *e = archive_entry_new();
  if (!e) return -1;
  archive_entry_set_pathname(e, name);
  archive_entry_set_size(e, (la_int64_t)len);
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_mtime(e, time(NULL), 0);
  int rc = archive_write_header(a, e) == ARCHIVE_OK &&
                   (len == 0 || archive_write_data(a, data, len) == (la_ssize_t)len)
               ? 0
               : -1;
  archive_entry_free(e);
  return rc;
}

static int write_bundle(exstate *s, const char *path, const results *r, const char *manifest,
                        const char *readme) {
  char err[600];
  myelin_atomic_file af = {0};
  if (myelin_atomic_open(&af, path, err, sizeof err) != 0) return s->host->error(s->st, "%s", err);
  struct archive *a = archive_write_new();
  int rc = a && archive_write_add_filter_gzip(a) == ARCHIVE_OK &&
                   archive_write_set_format_pax_restricted(a) == ARCHIVE_OK &&
                   archive_write_open_FILE(a, af.fp) == ARCHIVE_OK
               ? 0
               : -1;
  for (int k = 0; rc == 0 && k < 2; k++) {
    uint8_t *buf = NULL;
    size_t len = 0;
    rc = myelin_read_file(r->path[k], 0, &buf, &len, err, sizeof err);
    if (rc == 0) rc = add_entry(a, base_name(r->path[k]), buf, len);
    free(buf);
  }
  if (rc == 0) rc = add_entry(a, "manifest.json", manifest, strlen(manifest));
  if (rc == 0) rc = add_entry(a, "README.txt", readme, strlen(readme));
  const char *aerr = a && archive_error_string(a) ? archive_error_string(a) : "write failed";
  if (a && archive_write_close(a) != ARCHIVE_OK && rc == 0) rc = -1;
  if (rc) {
    int e = s->host->error(s->st, "%s: %s", path, aerr);
    if (a) archive_write_free(a);
    myelin_atomic_abort(&af);
    return e;
  }
  archive_write_free(a);
  if (myelin_atomic_commit(&af, 0, err, sizeof err) != 0) return s->host->error(s->st, "%s", err);
  return 0;
}

static int emit_metrics(exstate *s, const loihi_net *q, const results *r) {
  myelin_builder *b = myelin_builder_new("metrics");
  if (!b) return s->host->error(s->st, "out of memory");
  static const char *const keys[3] = {"net", "nir", "bundle"};
  myelin_build_map_begin(b, "values");
  if (r->tested) {
    myelin_build_float(b, "float_accuracy", r->float_acc);
    myelin_build_float(b, "quantized_accuracy", r->quant_acc);
    myelin_build_int(b, "test_samples", (int64_t)r->test_samples);
  }
  if (r->active) {
    myelin_build_float(b, "spikes_per_neuron_step", r->spikes_per_neuron_step);
    myelin_build_float(b, "synops_per_sample", r->synops_per_sample);
    myelin_build_float(b, "silent_spikes_per_neuron_step", r->silent_spikes_per_neuron_step);
  }
  myelin_build_int(b, "layers", q->n_layers);
  for (int k = 0; k < 3; k++) {
    char name[32];
    snprintf(name, sizeof name, "%s_bytes", keys[k]);
    if (r->bytes[k] >= 0) myelin_build_int(b, name, r->bytes[k]);
  }
  for (int l = 0; l < q->n_layers; l++) {
    char name[32];
    snprintf(name, sizeof name, "scale_%d", l);
    myelin_build_float(b, name, r->info[l].scale);
  }
  myelin_build_map_end(b);
  myelin_build_map_begin(b, "files");
  for (int k = 0; k < 3; k++)
    if (r->bytes[k] >= 0) myelin_build_str(b, keys[k], r->path[k]);
  myelin_build_map_end(b);
  myelin_build_str(b, "stage", s->host->stage_id(s->st));
  myelin_msg *m = myelin_builder_finish(b);
  if (!m) return s->host->error(s->st, "cannot build metrics message");
  int rc = s->host->emit(s->st, OUT_METRICS, m);
  return rc == MYELIN_ESTOP ? rc : 0;
}

static int export_all(exstate *s) {
  char err[600];
  loihi_net q;
  results r;
  memset(&r, 0, sizeof r);
  r.info = calloc((size_t)s->fnet.n_layers, sizeof(loihi_qinfo));
  if (!r.info) return s->host->error(s->st, "out of memory");
  int rc = loihi_quantize(&s->fnet, &q, r.info, err, sizeof err);
  if (rc) {
    free(r.info);
    return s->host->error(s->st, "network: %s", err);
  }
  static const char *const ext[3] = {".net", ".nir", ".tar.gz"};
  for (int k = 0; k < 3; k++) {
    snprintf(r.path[k], sizeof r.path[k], "%s%s", s->prefix, ext[k]);
    r.bytes[k] = -1;
  }
  char *manifest = NULL, *readme = NULL;
  if ((rc = write_hdf5(s, r.path[0], &q, 0)) || (rc = verify_netx(s, r.path[0], &q)) ||
      (rc = write_hdf5(s, r.path[1], &q, 1)))
    goto done;
  if (s->test.len && (rc = evaluate(s, &q, &r))) goto done;
  if (s->bundle) {
    manifest = manifest_text(s, &q, &r);
    readme = readme_text(&q, &r, s->dt);
    if (!manifest || !readme) {
      rc = s->host->error(s->st, "out of memory");
      goto done;
    }
    if ((rc = write_bundle(s, r.path[2], &r, manifest, readme))) goto done;
  }
  for (int k = 0; k < 3; k++)
    r.bytes[k] = file_size(r.path[k], k < 2 || s->bundle);
  if (r.tested)
    s->host->log(s->st, MYELIN_LOG_INFO, "test accuracy: float %.4f, quantized (Loihi) %.4f on %zu samples",
                 r.float_acc, r.quant_acc, r.test_samples);
  rc = emit_metrics(s, &q, &r);
done:
  free(manifest);
  free(readme);
  free(r.info);
  loihi_net_free(&q);
  return rc;
}

/* ---- lifecycle ----------------------------------------------------------- */

static int ex_validate(const myelin_params *p, myelin_validate_ctx *ctx) {
  const char *path = myelin_param_str(p, "path");
  if (!path || !*path) return myelin_validate_error(ctx, "path", "path (output prefix) must not be empty");
  if (strlen(path) > 4000) return myelin_validate_error(ctx, "path", "path is too long");
  return 0;
}

static void ex_fini(void *state);

static int ex_init_state(exstate *s, const myelin_host *host, myelin_stage *st, const myelin_params *p);

/* fini is only called when init succeeded, so a failing init frees here. */
static int ex_init(const myelin_host *host, myelin_stage *st, const myelin_params *p, void **state) {
  exstate *s = calloc(1, sizeof *s);
  if (!s) return host->error(st, "out of memory");
  int rc = ex_init_state(s, host, st, p);
  if (rc) {
    ex_fini(s);
    s = NULL;
  }
  *state = s;
  return rc;
}

static int ex_init_state(exstate *s, const myelin_host *host, myelin_stage *st, const myelin_params *p) {
  s->host = host;
  s->st = st;
  s->prefix = strdup(myelin_param_str(p, "path"));
  s->pipeline = myelin_input_path(myelin_param_str(p, "pipeline"), host->pipeline_dir(st));
  s->dt = myelin_param_float(p, "dt");
  s->bundle = myelin_param_bool(p, "bundle");
  s->max_pending = myelin_param_int(p, "max_pending");
  if (!s->prefix || !s->pipeline) return host->error(st, "out of memory");
  char err[600], probe[4200];
  snprintf(probe, sizeof probe, "%s.net", s->prefix);
  if (myelin_mkdirs_for(probe, err, sizeof err) != 0 || myelin_check_writable(probe, err, sizeof err) != 0)
    return host->error(st, "path: %s", err);
  if (*s->pipeline && access(s->pipeline, R_OK) != 0)
    return host->error(st, "pipeline: cannot read %s: %s", s->pipeline, strerror(errno));
  return 0;
}

static int ex_process(void *state, int port, myelin_msg *msg) {
  exstate *s = state;
  char err[512];
  if (port == IN_NETWORK) {
    loihi_fnet f;
    if (loihi_fnet_from_msg(msg, &f, err, sizeof err) != 0) return s->host->error(s->st, "%s", err);
    if (s->have_net) loihi_fnet_free(&s->fnet);
    s->fnet = f;
    s->have_net = 1;
    return 0;
  }
  loihi_spikes sp;
  if (loihi_spikes_view(msg, &sp, err, sizeof err) != 0) return s->host->error(s->st, "test: %s", err);
  if ((int64_t)s->test.len >= s->max_pending)
    return s->host->error(s->st, "test: more than max_pending = %lld samples; raise it or limit the test set",
                          (long long)s->max_pending);
  if (loihi_store_push(&s->test, msg, &sp, err, sizeof err) != 0)
    return s->host->error(s->st, "test: %s", err);
  return 0;
}

static int ex_flush(void *state) {
  exstate *s = state;
  if (!s->have_net) return s->host->error(s->st, "no network message arrived; nothing to export");
  int rc = export_all(s);
  s->exported = rc == 0;
  return rc;
}

static void ex_fini(void *state) {
  exstate *s = state;
  if (!s) return;
  if (s->host->stopping(s->st)) { /* the run ended early: say what is left (README) */
    if (s->exported)
      s->host->log(s->st, MYELIN_LOG_INFO, "kept %s.net, %s.nir%s: complete", s->prefix, s->prefix,
                   s->bundle ? " and .tar.gz" : "");
    else
      s->host->log(s->st, MYELIN_LOG_WARN,
                   "discarded %s.*: nothing exported (the run stopped on an error or abort%s)", s->prefix,
                   s->have_net ? "" : " before a network arrived");
  }
  if (s->have_net) loihi_fnet_free(&s->fnet);
  loihi_store_clear(&s->test);
  free(s->prefix);
  free(s->pipeline);
  free(s);
}

/* ---- descriptor ---------------------------------------------------------- */

static const myelin_param_def ex_params[] = {
    {.name = "path",
     .type = MYELIN_PARAM_PATH,
     .def = NULL,
     .doc = "Output prefix: writes PREFIX.net (lava-dl netx), PREFIX.nir (NIR) and PREFIX.tar.gz. "
            "Parent folders are created."},
    {.name = "dt",
     .type = MYELIN_PARAM_FLOAT,
     .def = "0.0001",
     .has_range = 1,
     .min = 1e-9,
     .max = 1e6,
     .unit = "s",
     .doc = "Seconds per time step, for the NIR time constants (tau = dt*4096/decay, r = tau_mem/dt); stored "
            "as the NIR graph's metadata dt. 1e-4 is what snnTorch's NIR importer and NIR's Lava example "
            "assume (snnTorch rejects other values: 'r not supported in CubaLIF')."},
    {.name = "bundle",
     .type = MYELIN_PARAM_BOOL,
     .def = "true",
     .doc = "Also write PREFIX.tar.gz with both files, manifest.json and README.txt."},
    {.name = "pipeline",
     .type = MYELIN_PARAM_INPUT_PATH,
     .def = "",
     .doc = "Pipeline file to record in manifest.json as the network's source (text embedded); "
            "a relative path missing from the working directory is looked up next to the pipeline file."},
    {.name = "max_pending",
     .type = MYELIN_PARAM_INT,
     .def = "20000",
     .has_range = 1,
     .min = 0,
     .max = 10000000,
     .unit = "samples",
     .doc = "Test samples held (compactly) until the network arrives; more is an error."},
    {0}};

static const myelin_port_def ex_inputs[] = {
    {.name = "network", .kinds = "network", .doc = "Float CUBA-LIF network; the last one is exported."},
    {.name = "test",
     .kinds = "spikes",
     .optional = 1,
     .doc = "Labelled test spikes: float and quantized (bit-accurate) accuracy, side by side."},
    {0}};

static const myelin_port_def ex_outputs[] = {
    {.name = "metrics",
     .kinds = "metrics",
     .doc = "values: float_accuracy, quantized_accuracy, test_samples, activity (spikes_per_neuron_step, "
            "synops_per_sample, silent_spikes_per_neuron_step), layers, *_bytes, scale_<l>; "
            "files: net, nir, bundle paths."},
    {0}};

static const myelin_plugin_desc ex_desc = {
    MYELIN_DESC_HEADER,
    .name = "loihi_export",
    .version = "1.0.0",
    .summary = "Quantize a float CUBA network for Loihi; write lava-dl netx, NIR and a .tar.gz bundle",
    .doc = "Quantizes with lava-dl slayer's conventions (decays as the fraction lost per step on a "
           "4096 scale, 8-bit even weights, a per-layer scale shared by weights, threshold and bias) "
           "and writes files that netx.hdf5.Network and nir.read load. See "
           "plugins/loihi_export/README.md.",
    .params = ex_params,
    .inputs = ex_inputs,
    .outputs = ex_outputs,
    .validate = ex_validate,
    .init = ex_init,
    .process = ex_process,
    .flush = ex_flush,
    .fini = ex_fini,
};

MYELIN_PLUGIN(ex_desc)
