// Fuzzes LoadConfigText: any text must load or come back as ConfigProblems, never throw or crash.
#include <cstddef>
#include <cstdint>
#include <string>

#include "topicbridge/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)topicbridge::LoadConfigText(text);
  return 0;
}
