/*
 * tensor_elem.h — element i of a tensor of any dtype as float, for sinks
 * that write float32 images (nifti_sink, gifti_sink); header-only.
 */
#ifndef MYELIN_PLUGIN_TENSOR_ELEM_H
#define MYELIN_PLUGIN_TENSOR_ELEM_H

#include <math.h>
#include <stdint.h>

#include "myelin/msg.h"

static inline float tensor_elem_f32(const myelin_tensor *t, size_t i) {
  switch (t->dtype) {
  case MYELIN_F4:
    return ((const float *)t->data)[i];
  case MYELIN_F8:
    return (float)((const double *)t->data)[i];
  case MYELIN_I1:
    return ((const int8_t *)t->data)[i];
  case MYELIN_I2:
    return ((const int16_t *)t->data)[i];
  case MYELIN_I4:
    return (float)((const int32_t *)t->data)[i];
  case MYELIN_I8:
    return (float)((const int64_t *)t->data)[i];
  case MYELIN_U1:
  case MYELIN_B1:
    return ((const uint8_t *)t->data)[i];
  case MYELIN_U2:
    return ((const uint16_t *)t->data)[i];
  case MYELIN_U4:
    return (float)((const uint32_t *)t->data)[i];
  case MYELIN_U8:
    return (float)((const uint64_t *)t->data)[i];
  default:
    return NAN;
  }
}

#endif
