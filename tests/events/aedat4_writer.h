/*
 * aedat4_writer.h — test-only AEDAT 4.0 writer (aedat4_writer.cpp): the
 * size-prefixed FlatBuffers of a header, an event packet and a packet of
 * another type, built with the C++ that flatc generates from
 * plugins/event_common/aedat4_*.fbs (the schemas event_source reads with).
 * Each returns a malloc'ed buffer (the caller frees) and its length in *n.
 */
#ifndef MYELIN_TEST_AEDAT4_WRITER_H
#define MYELIN_TEST_AEDAT4_WRITER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

uint8_t *a4w_header(int32_t compression, int64_t table, const char *info, size_t *n);
uint8_t *a4w_events(const int64_t *t, const int16_t *x, const int16_t *y, const uint8_t *on, size_t count,
                    size_t *n);
/* An empty table with the 4-character identifier id (frames, IMU...). */
uint8_t *a4w_other(const char *id, size_t *n);

#ifdef __cplusplus
}
#endif

#endif
