// Fuzzes AidboxToFhir::ConvertResource: any input must convert, or give "" when it is not an
// object with a string resourceType; shapes outside the model are counted, never a crash.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "topicbridge/aidbox_to_fhir.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view json(reinterpret_cast<const char*>(data), size);
  topicbridge::ConversionStats stats;
  (void)topicbridge::AidboxToFhir().ConvertResource(json, &stats);
  return 0;
}
