/*
 * geometry.h — which model a message's `geometry` map uses (schemas/geometry.md)
 * and which sinks can write it; header-only, shared by the sinks and the
 * readers that build geometry.
 *
 * A sink calls geom_model_of() on the message's geometry and, for a model it
 * cannot write, reports geom_refusal(), which names the sinks that can: the
 * one place that knows which sink writes which model.
 */
#ifndef MYELIN_PLUGIN_GEOMETRY_H
#define MYELIN_PLUGIN_GEOMETRY_H

#include <stdio.h>
#include <string.h>

#include "myelin/msg.h"

typedef enum geom_model {
  GEOM_VOLUME,        /* dims/affine/voxels, or a NIfTI atlas (model absent or "volume") */
  GEOM_SURFACE,       /* structures, all surface vertices */
  GEOM_GRAYORDINATES, /* structures, surface vertices and voxels */
  GEOM_PARCELS,       /* named parcels of vertices and/or voxels */
  GEOM_UNKNOWN        /* a model name this build does not know */
} geom_model;

static const char *const geom_model_names[] = {"volume", "surface", "grayordinates", "parcels"};

/* The model of a geometry map; a missing model is "volume" (the form every
 * message had before surfaces existed). */
static inline geom_model geom_model_of(myelin_obj g) {
  myelin_obj m = myelin_obj_get(g, "model");
  if (!myelin_obj_exists(m)) return GEOM_VOLUME;
  for (int i = 0; i < 4; i++)
    if (myelin_obj_str_eq(m, geom_model_names[i])) return (geom_model)i;
  return GEOM_UNKNOWN;
}

static inline const char *geom_model_name(geom_model m) {
  return m < GEOM_UNKNOWN ? geom_model_names[m] : "unknown";
}

/* The sinks that write model m, as a phrase for error messages. */
static inline const char *geom_writers(geom_model m) {
  switch (m) {
  case GEOM_VOLUME:
    return "nifti_sink (.nii/.nii.gz)";
  case GEOM_SURFACE:
    return "gifti_sink (.func.gii/.shape.gii per hemisphere) or cifti_sink (.dscalar.nii)";
  case GEOM_GRAYORDINATES:
    return "cifti_sink (.dscalar.nii)";
  case GEOM_PARCELS:
    return "cifti_sink (.pscalar.nii)";
  default:
    return "none (models: volume, surface, grayordinates, parcels; schemas/geometry.md)";
  }
}

/* "<kind> message has <model> geometry ...: <sink> cannot write it; use ..." */
static inline void geom_refusal(char *buf, size_t n, const char *sink, const char *kind, myelin_obj g) {
  geom_model m = geom_model_of(g);
  char model[64];
  if (m == GEOM_UNKNOWN) {
    char raw[48] = "?";
    myelin_obj_str_copy(myelin_obj_get(g, "model"), raw, sizeof raw);
    snprintf(model, sizeof model, "unknown model '%s'", raw);
  } else {
    snprintf(model, sizeof model, "%s", geom_model_name(m));
  }
  snprintf(buf, n, "%s message has %s geometry (geometry.model): %s cannot write it; use %s", kind, model,
           sink, geom_writers(m));
}

#endif
