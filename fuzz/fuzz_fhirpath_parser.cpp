// Fuzzes Expression::Compile: any text must compile or come back as a SyntaxError value.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "topicbridge/fhirpath.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)topicbridge::fhirpath::Expression::Compile(text);
  return 0;
}
