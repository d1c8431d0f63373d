/*
 * schema.h — message schemas (internal to libmyelin; used by `myelin run
 * --check-messages`, validation and tests).
 *
 * One YAML file per message kind in schemas/ (DESIGN.md section 4):
 *
 *     kind: spikes
 *     doc: one sample as spike events
 *     required: {n: uint, steps: uint, dt: float, step: tensor, unit: tensor}
 *     optional: {seq: uint, t: float, label: int}
 *
 * A field's type is one of int, uint, float (ints accepted), str, bool,
 * tensor, map, list, bin, nil, any, or a union such as "int|str". A field may
 * also be a mapping with `type` plus nested `required`/`optional` (fields of a
 * map), `values` (the type of every value of a map), `items` (the type of
 * every element of a list), for tensors `dtype` ("<u4", or a list such as
 * ["|u1", <f8]; quote names starting with "|" in YAML) and `ndim`, and `doc`.
 * Fields not listed are allowed.
 */
#ifndef MYELIN_SCHEMA_H
#define MYELIN_SCHEMA_H

#include <stddef.h>

#include "myelin/msg.h"

typedef struct myelin_schemas myelin_schemas;

/* Loads every *.yaml file of dir. NULL with "FILE:LINE:COL: reason" in err. */
myelin_schemas *myelin_schemas_load(const char *dir, char *err, size_t errlen);
int myelin_schemas_has(const myelin_schemas *s, const char *kind);
/* 0 or MYELIN_EFORMAT with "spikes: field 'step': expected tensor, got str"
 * in err. A kind without a schema passes (plugins may define their own). */
int myelin_schemas_check(const myelin_schemas *s, const myelin_msg *m, char *err, size_t errlen);
size_t myelin_schemas_count(const myelin_schemas *s);
const char *myelin_schemas_kind_at(const myelin_schemas *s, size_t i);
void myelin_schemas_free(myelin_schemas *s);

#endif
