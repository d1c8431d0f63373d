/*
 * cli_inspect.c — `myelin inspect PLUGIN [--json]`: the plugin's descriptor
 * (summary, params with type, default, range or choices, unit and doc;
 * ports with their message kinds), generated from the same tables the
 * runtime checks pipeline files against.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "internal.h"

static void js(FILE *f, const char *s) {
  if (!s)
    fputs("null", f);
  else
    json_str(f, s, strlen(s));
}

static void json_ports(const myelin_port_def *ports) {
  printf("[");
  for (size_t i = 0; ports && ports[i].name; i++) {
    printf("%s{\"name\": ", i ? ", " : "");
    js(stdout, ports[i].name);
    printf(", \"kinds\": ");
    js(stdout, ports[i].kinds);
    printf(", \"optional\": %s, \"doc\": ", ports[i].optional ? "true" : "false");
    js(stdout, ports[i].doc);
    printf("}");
  }
  printf("]");
}

static void print_json(const myelin_plugin_desc *d, const char *path) {
  printf("{\"name\": ");
  js(stdout, d->name);
  printf(", \"version\": ");
  js(stdout, d->version);
  printf(", \"summary\": ");
  js(stdout, d->summary);
  printf(", \"doc\": ");
  js(stdout, d->doc);
  printf(", \"path\": ");
  js(stdout, path);
  printf(", \"abi\": [%u, %u], \"params\": [", d->abi_major, d->abi_minor);
  for (size_t i = 0; d->params && d->params[i].name; i++) {
    const myelin_param_def *p = &d->params[i];
    printf("%s{\"name\": ", i ? ", " : "");
    js(stdout, p->name);
    printf(", \"type\": ");
    js(stdout, param_type_name(p->type));
    printf(", \"default\": ");
    js(stdout, p->def);
    printf(", \"required\": %s", p->def ? "false" : "true");
    if (p->has_range) printf(", \"min\": %.17g, \"max\": %.17g", p->min, p->max);
    if (p->choices) {
      printf(", \"choices\": [");
      const char *c = p->choices;
      for (int k = 0; c && *c; k++) {
        const char *e = strchr(c, '|');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        printf("%s", k ? ", " : "");
        json_str(stdout, c, n);
        c = e ? e + 1 : NULL;
      }
      printf("]");
    }
    printf(", \"unit\": ");
    js(stdout, p->unit);
    printf(", \"doc\": ");
    js(stdout, p->doc);
    printf("}");
  }
  printf("], \"inputs\": ");
  json_ports(d->inputs);
  printf(", \"outputs\": ");
  json_ports(d->outputs);
  printf("}\n");
}

static void print_text(const myelin_plugin_desc *d, const char *path) {
  printf("%s %s — %s\n", d->name, d->version ? d->version : "", d->summary ? d->summary : "");
  printf("  file: %s (ABI %u.%u)\n", path, d->abi_major, d->abi_minor);
  if (d->doc) printf("\n%s\n", d->doc);
  printf("\nInputs:\n");
  if (!d->inputs || !d->inputs[0].name) printf("  (none: a source)\n");
  for (size_t i = 0; d->inputs && d->inputs[i].name; i++)
    printf("  %-12s %-28s %s%s\n", d->inputs[i].name, d->inputs[i].kinds,
           d->inputs[i].optional ? "(optional) " : "", d->inputs[i].doc ? d->inputs[i].doc : "");
  printf("\nOutputs:\n");
  if (!d->outputs || !d->outputs[0].name) printf("  (none: a sink)\n");
  for (size_t i = 0; d->outputs && d->outputs[i].name; i++)
    printf("  %-12s %-28s %s\n", d->outputs[i].name, d->outputs[i].kinds,
           d->outputs[i].doc ? d->outputs[i].doc : "");
  printf("\nParams:\n");
  if (!d->params || !d->params[0].name) printf("  (none)\n");
  for (size_t i = 0; d->params && d->params[i].name; i++) {
    const myelin_param_def *p = &d->params[i];
    printf("  %-16s %-12s default: %s", p->name, param_type_name(p->type), p->def ? p->def : "(required)");
    if (p->has_range) printf("  range: [%g, %g]", p->min, p->max);
    if (p->choices) printf("  one of: %s", p->choices);
    if (p->unit) printf("  unit: %s", p->unit);
    printf("\n");
    if (p->doc) printf("      %s\n", p->doc);
  }
}

int cmd_inspect(int argc, char **argv) {
  const char *name = NULL;
  int json = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--json"))
      json = 1;
    else if (a[0] == '-')
      return cli_usage_error("inspect", "unknown option '%s'", a);
    else if (!name)
      name = a;
    else
      return cli_usage_error("inspect", "unexpected argument '%s' (one plugin per command)", a);
  }
  if (!name) return cli_usage_error("inspect", "no plugin name given (myelin plugins lists them)");
  char path[PATH_MAX], err[2048];
  plugin_lib lib;
  if (plugin_find(name, NULL, 0, path, sizeof path, err, sizeof err) ||
      plugin_open(path, &lib, err, sizeof err)) {
    fprintf(stderr, "myelin inspect: %s\n", err);
    return 2;
  }
  if (json)
    print_json(lib.desc, path);
  else
    print_text(lib.desc, path);
  plugin_close(&lib);
  return 0;
}
