// Fuzzes Wal2JsonDecoder::Decode: any byte string must decode or return an error value, never
// crash (the promise in wal2json_decoder.h). One decoder and Change are reused, as in the pipeline.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "topicbridge/wal2json_decoder.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static topicbridge::Wal2JsonDecoder decoder;
  static topicbridge::Change change;
  std::string_view message(reinterpret_cast<const char*>(data), size);
  (void)decoder.Decode(message, &change);
  return 0;
}
