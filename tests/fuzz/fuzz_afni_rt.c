/* libFuzzer target: the AFNI realtime protocol decoder of fmri_source's
 * listen mode (plugins/fmri_source/afni_rt.c) on arbitrary bytes, fed in
 * pieces whose sizes byte 0 picks (as TCP may cut a stream). Checked: a
 * stream either fails with a message or delivers volumes of the announced
 * size with finite affines; afni_rt_where always gives a string. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "afni_rt.h"

static int check_volume(void *arg, const afni_rt *p, const float *vol) {
  (void)vol;
  size_t *n = arg;
  (*n)++;
  if (p->dims[0] < 2 || p->dims[1] < 2 || p->dims[2] < 1) abort();
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++)
      if (!isfinite(p->affine[i][j])) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  size_t piece = 1 + (size_t)data[0] * 7;
  data++;
  size--;
  afni_rt p;
  afni_rt_init(&p);
  size_t volumes = 0;
  char err[512], where[256];
  for (size_t i = 0; i < size;) {
    size_t n = piece < size - i ? piece : size - i;
    err[0] = 0;
    int rc = afni_rt_feed(&p, data + i, n, check_volume, &volumes, err, sizeof err);
    if (rc < 0 && !err[0]) abort(); /* every failure says why */
    if (rc) break;
    i += n;
  }
  afni_rt_where(&p, where, sizeof where);
  if (strlen(where) >= sizeof where) abort();
  afni_rt_free(&p);
  return 0;
}
