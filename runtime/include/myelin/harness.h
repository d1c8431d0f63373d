/*
 * myelin/harness.h — run one plugin instance without a pipeline, for tests.
 *
 * Like GStreamer's GstHarness: load a plugin (by name through the usual
 * search path, or by .so path), give it params as YAML flow text, push
 * messages into its input ports, signal end of stream, and collect what it
 * emitted on each output port. Everything runs on the calling thread:
 * start() for sources runs to completion inside myelin_harness_start().
 *
 *   char err[512];
 *   myelin_harness *h = myelin_harness_new("spike_encoder",
 *                                          "{method: rate, steps: 8}", err, sizeof err);
 *   myelin_harness_push(h, "in", msg);        // takes ownership
 *   myelin_harness_eos(h);                    // flush
 *   myelin_msg *out = myelin_harness_output(h, "spikes", 0);
 *   myelin_harness_free(h);
 */
#ifndef MYELIN_HARNESS_H
#define MYELIN_HARNESS_H

#include <stddef.h>

#include "msg.h"
#include "plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct myelin_harness myelin_harness;

/* params_yaml: a YAML mapping ("{a: 1, b: [2, 3]}"), or NULL for defaults.
 * Params are checked against the plugin's table and its validate() runs with
 * every connected input port assumed to carry the port's declared kinds.
 * Returns NULL with a message in err on failure. */
myelin_harness *myelin_harness_new(const char *plugin, const char *params_yaml, char *err, size_t errlen);
/* Runs start() (sources) to completion. */
int myelin_harness_start(myelin_harness *h);
/* Pushes msg (ownership taken) into input port `port` (name, or NULL for the
 * only input) and calls process(). Returns process()'s result. */
int myelin_harness_push(myelin_harness *h, const char *port, myelin_msg *msg);
/* End of stream on every input: calls flush(). */
int myelin_harness_eos(myelin_harness *h);
/* Collected output: count, and the i-th message (borrowed; NULL past the end). */
size_t myelin_harness_count(const myelin_harness *h, const char *port);
myelin_msg *myelin_harness_output(const myelin_harness *h, const char *port, size_t i);
/* Drops what was collected so far. */
void myelin_harness_clear(myelin_harness *h);
/* The last error reported through host->error, or "". */
const char *myelin_harness_error(const myelin_harness *h);
/* The warnings and errors the plugin logged (host->log), one per line. */
const char *myelin_harness_logs(const myelin_harness *h);
/* The counter's current value (host->counter_add), 0 if never set. */
int64_t myelin_harness_counter(const myelin_harness *h, const char *name);
/* Calls fini and unloads. */
void myelin_harness_free(myelin_harness *h);

#ifdef __cplusplus
}
#endif
#endif
