/*
 * evaedat4_fb.cpp — AEDAT 4.0 FlatBuffers through the code flatc generates
 * from aedat4_header.fbs and aedat4_events.fbs (evaedat4_fb.h).
 *
 * Every buffer goes through flatbuffers::Verifier (bounds, offsets,
 * alignment, the identifier, string termination) before any accessor
 * touches it, so a corrupt packet is an error, never a wild read. No C++
 * exception crosses into C (the generated readers throw none; the entry
 * points catch everything anyway).
 */
#include <cstdio>
#include <cstring>

#include "aedat4_events_generated.h"
#include "aedat4_header_generated.h"
#include "evaedat4_fb.h"

namespace {

// Size-prefixed buffers hold a 4-byte length, then the buffer; the length
// must cover exactly what follows (AEDAT 4 never pads after it).
bool prefix_ok(const uint8_t *b, size_t n, char *why, size_t whylen) {
  if (n < 8) {
    std::snprintf(why, whylen, "%zu bytes: too short for a FlatBuffer", n);
    return false;
  }
  uint32_t len = flatbuffers::ReadScalar<uint32_t>(b);
  if (len != n - 4) {
    std::snprintf(why, whylen, "its size prefix says %u bytes, %zu follow", len, n - 4);
    return false;
  }
  return true;
}

}  // namespace

extern "C" int ev_fb_header(const uint8_t *b, size_t n, int32_t *compression, int64_t *table, const char **info,
                            size_t *info_len, char *why, size_t whylen) {
  try {
    if (!prefix_ok(b, n, why, whylen)) return -1;
    if (!myelin::aedat4::SizePrefixedHeaderBufferHasIdentifier(b)) {
      std::snprintf(why, whylen, "not an AEDAT 4 header (identifier is not IOHE)");
      return -1;
    }
    flatbuffers::Verifier v(b, n);
    if (!myelin::aedat4::VerifySizePrefixedHeaderBuffer(v)) {
      std::snprintf(why, whylen, "the header FlatBuffer fails verification (corrupt)");
      return -1;
    }
    const myelin::aedat4::Header *h = myelin::aedat4::GetSizePrefixedHeader(b);
    *compression = static_cast<int32_t>(h->compression());
    *table = h->data_table_position();
    const flatbuffers::String *s = h->info();
    *info = s ? s->c_str() : nullptr;
    *info_len = s ? s->size() : 0;
    return 0;
  } catch (...) {
    std::snprintf(why, whylen, "unexpected error reading the header");
    return -1;
  }
}

extern "C" int ev_fb_events(const uint8_t *b, size_t n, const uint8_t **events, size_t *count, char id[5],
                            char *why, size_t whylen) {
  try {
    id[0] = 0;
    if (!prefix_ok(b, n, why, whylen)) return -1;
    std::memcpy(id, b + 8, 4); /* prefix, root offset, identifier */
    id[4] = 0;
    /* another packet type (frames, IMU, triggers): skipped unread */
    if (!myelin::aedat4::SizePrefixedEventPacketBufferHasIdentifier(b)) return 0;
    flatbuffers::Verifier v(b, n);
    if (!myelin::aedat4::VerifySizePrefixedEventPacketBuffer(v)) {
      std::snprintf(why, whylen, "an event packet that fails FlatBuffer verification (corrupt)");
      return -1;
    }
    const myelin::aedat4::EventPacket *p = myelin::aedat4::GetSizePrefixedEventPacket(b);
    const flatbuffers::Vector<const myelin::aedat4::Event *> *e = p->events();
    static_assert(sizeof(myelin::aedat4::Event) == 16, "AEDAT 4 events are 16 bytes");
    *events = e ? reinterpret_cast<const uint8_t *>(e->Data()) : nullptr;
    *count = e ? e->size() : 0;
    return 1;
  } catch (...) {
    std::snprintf(why, whylen, "unexpected error reading a packet");
    return -1;
  }
}
