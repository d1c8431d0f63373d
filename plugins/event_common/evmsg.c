/*
 * evmsg.c — the `events` message (schemas/events.md) to and from event
 * arrays: a borrowed view of a received message, checked once here so the
 * transforms can index frames with x, y, p directly, and the builder of the
 * four tensors.
 */
#include <stdio.h>
#include <string.h>

#include "events.h"

static int tensor_1d(const myelin_msg *m, const char *key, myelin_dtype dt, myelin_tensor *t, char *err,
                     size_t errlen) {
  int rc = myelin_msg_tensor(m, key, t);
  if (rc)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "events message: `%s` is %s", key,
                         rc == MYELIN_ENOENT ? "missing" : "not a valid tensor");
  if (t->dtype != dt || t->ndim != 1)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT,
                         "events message: `%s` must be a 1-D %s tensor, not %d-D %s", key,
                         myelin_dtype_name(dt), t->ndim, myelin_dtype_name(t->dtype));
  return 0;
}

int ev_view_of(const myelin_msg *m, ev_view *v, char *err, size_t errlen) {
  memset(v, 0, sizeof *v);
  myelin_obj s = myelin_msg_get(m, "sensor");
  uint64_t dims[3];
  if (myelin_obj_type_of(s) != MYELIN_OBJ_ARRAY || myelin_obj_len(s) != 3)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "events message: `sensor` must be a list [W, H, P]");
  for (size_t i = 0; i < 3; i++)
    if (myelin_obj_uint(myelin_obj_at(s, i), &dims[i]) || dims[i] == 0 || dims[i] > 65536)
      return myelin_errorf(err, errlen, MYELIN_EFORMAT,
                           "events message: `sensor` [W, H, P] must hold integers in 1..65536");
  if (dims[2] > 256)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT, "events message: at most 256 polarities, not %llu",
                         (unsigned long long)dims[2]);
  v->sensor = (ev_sensor){(uint32_t)dims[0], (uint32_t)dims[1], (uint32_t)dims[2]};
  myelin_tensor x, y, p, t;
  int rc;
  if ((rc = tensor_1d(m, "x", MYELIN_U2, &x, err, errlen)) ||
      (rc = tensor_1d(m, "y", MYELIN_U2, &y, err, errlen)) ||
      (rc = tensor_1d(m, "p", MYELIN_U1, &p, err, errlen)) ||
      (rc = tensor_1d(m, "t", MYELIN_I8, &t, err, errlen)))
    return rc;
  if (x.count != y.count || x.count != p.count || x.count != t.count)
    return myelin_errorf(err, errlen, MYELIN_EFORMAT,
                         "events message: x, y, p, t have different lengths (%zu, %zu, %zu, %zu)", x.count,
                         y.count, p.count, t.count);
  v->n = x.count;
  v->x = x.data;
  v->y = y.data;
  v->p = p.data;
  v->t = t.data;
  for (size_t i = 0; i < v->n; i++)
    if (v->x[i] >= v->sensor.w || v->y[i] >= v->sensor.h || v->p[i] >= v->sensor.p)
      return myelin_errorf(err, errlen, MYELIN_EFORMAT,
                           "events message: event %zu (x=%u y=%u p=%u) lies outside the sensor %ux%ux%u", i,
                           v->x[i], v->y[i], v->p[i], v->sensor.w, v->sensor.h, v->sensor.p);
  return 0;
}

myelin_builder *ev_build(const ev_sensor *s, const uint16_t *x, const uint16_t *y, const uint8_t *p,
                         const int64_t *t, size_t n) {
  myelin_builder *b = myelin_builder_new("events");
  if (!b) return NULL;
  myelin_build_array_begin(b, "sensor");
  myelin_build_uint(b, NULL, s->w);
  myelin_build_uint(b, NULL, s->h);
  myelin_build_uint(b, NULL, s->p);
  myelin_build_array_end(b);
  int64_t shape[1] = {(int64_t)n};
  static const int64_t none[1] = {0}; /* a valid source for empty arrays (which may be NULL) */
  if (n == 0) x = y = (const uint16_t *)none, p = (const uint8_t *)none, t = none;
  myelin_build_tensor_copy(b, "x", MYELIN_U2, 1, shape, x);
  myelin_build_tensor_copy(b, "y", MYELIN_U2, 1, shape, y);
  myelin_build_tensor_copy(b, "p", MYELIN_U1, 1, shape, p);
  myelin_build_tensor_copy(b, "t", MYELIN_I8, 1, shape, t);
  return b;
}
