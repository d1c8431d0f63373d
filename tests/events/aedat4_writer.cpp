/* aedat4_writer.cpp — see aedat4_writer.h (test-only). */
#include "aedat4_writer.h"

#include <cstdlib>
#include <cstring>
#include <vector>

#include "aedat4_events_generated.h"
#include "aedat4_header_generated.h"

namespace {
uint8_t *copy_out(flatbuffers::FlatBufferBuilder &fbb, size_t *n) {
  *n = fbb.GetSize();
  uint8_t *b = static_cast<uint8_t *>(std::malloc(*n));
  if (b) std::memcpy(b, fbb.GetBufferPointer(), *n);
  return b;
}
}  // namespace

extern "C" uint8_t *a4w_header(int32_t compression, int64_t table, const char *info, size_t *n) {
  flatbuffers::FlatBufferBuilder fbb;
  fbb.ForceDefaults(true); /* as dv-processing writes it: every field present */
  auto s = info ? fbb.CreateString(info) : 0;
  auto h = myelin::aedat4::CreateHeader(fbb, static_cast<myelin::aedat4::Compression>(compression), table, s);
  myelin::aedat4::FinishSizePrefixedHeaderBuffer(fbb, h);
  return copy_out(fbb, n);
}

extern "C" uint8_t *a4w_events(const int64_t *t, const int16_t *x, const int16_t *y, const uint8_t *on,
                               size_t count, size_t *n) {
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<myelin::aedat4::Event> ev;
  for (size_t i = 0; i < count; i++)
    ev.emplace_back(t[i], x[i], y[i], on[i] != 0);
  auto v = fbb.CreateVectorOfStructs(ev);
  auto p = myelin::aedat4::CreateEventPacket(fbb, v);
  myelin::aedat4::FinishSizePrefixedEventPacketBuffer(fbb, p);
  return copy_out(fbb, n);
}

extern "C" uint8_t *a4w_other(const char *id, size_t *n) {
  flatbuffers::FlatBufferBuilder fbb;
  auto start = fbb.StartTable();
  auto end = fbb.EndTable(start);
  fbb.FinishSizePrefixed(flatbuffers::Offset<flatbuffers::Table>(end), id);
  return copy_out(fbb, n);
}
