// AidboxToFhir: rewrites JSON from Aidbox's storage format to FHIR, guided by the generated FHIR
// R4 model table: references {resourceType, id} / {uri} / {localRef} become {reference}, choices
// `value: {Quantity: {...}}` become `valueQuantity`, at any depth and inside contained resources.
// What does not fit the model is copied unchanged and counted in ConversionStats, never thrown.
// Holds no state: one instance may be used from several threads, each with its own writer/stats.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "topicbridge/json_writer.h"

namespace topicbridge {

struct ConversionStats {
  std::uint64_t references = 0;  // Aidbox references rewritten to {reference}
  std::uint64_t choices = 0;     // choice elements renamed to element + type
  // Shapes copied unchanged because they contradict the model: a choice whose type is not
  // allowed, a reference-shaped object at a non-Reference path, an object at a primitive path.
  std::uint64_t warnings = 0;
  // Elements the model does not define (e.g. Aidbox first-class extensions): copied unchanged.
  std::uint64_t unknown_elements = 0;
  // "<path>: <what>" for the first kMaxSamples warnings, for logging.
  static constexpr std::size_t kMaxSamples = 5;
  std::vector<std::string> samples;

  void Clear() { *this = ConversionStats(); }
};

class AidboxToFhir {
 public:
  // Writes every field of `resource` (Aidbox format, the top level of a `resource_type`)
  // converted to FHIR, except the keys in `skip_keys` (e.g. "id", "resourceType", "meta", which
  // the caller writes itself), as key/value pairs into `out`.
  // REQUIRES: `out` is inside an open object. `stats` may be null.
  void WriteFields(std::string_view resource_type, simdjson::dom::object resource,
                   std::initializer_list<std::string_view> skip_keys, JsonWriter* out,
                   ConversionStats* stats) const;

  // Writes one field `key` of the element at FHIR path `parent_path` ("Patient", "Meta",
  // "Observation.component"): the key, renamed if it is a choice, then the converted value.
  // REQUIRES: `out` is inside an open object.
  void WriteField(std::string_view parent_path, std::string_view key, simdjson::dom::element value,
                  JsonWriter* out, ConversionStats* stats) const;

  // Writes the value of the element at FHIR path `path` ("Meta", "Patient.meta",
  // "Observation.subject") converted. A choice path cannot be renamed here (use WriteField):
  // its value is copied unchanged with a warning.
  // REQUIRES: `out` expects a value (inside an array, after Key(), or at the top).
  void WriteElement(std::string_view path, simdjson::dom::element element, JsonWriter* out,
                    ConversionStats* stats) const;

  // Converts a whole Aidbox-format resource that carries its "resourceType" (for tests and
  // tools: it parses with its own parser). Returns "" when the input is not a JSON object with
  // a string resourceType.
  std::string ConvertResource(std::string_view aidbox_json, ConversionStats* stats = nullptr) const;
};

}  // namespace topicbridge
