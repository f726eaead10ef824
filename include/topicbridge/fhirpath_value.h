// One item of a FHIRPath collection: either a system value (Boolean, Integer, Decimal, String,
// Date, DateTime, Time, Quantity, a type() result) or a node of the FHIR JSON being evaluated.
// Values borrow: string_views and elements point into documents, the compiled expression or the
// Evaluator's arena, so a Value lives no longer than the EvalResult it came from.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string_view>

namespace topicbridge::fhirpath {

enum class ValueKind : std::uint8_t {
  kBoolean,
  kInteger,
  kDecimal,
  kString,
  kDate,
  kDateTime,
  kTime,
  kQuantity,
  kTypeInfo,  // result of type(): namespace in `unit`, name in `text`
  kNode,      // a JSON element (object, or primitive with its `_name` sibling)
};

// Finest component present in a date/time literal or value.
enum class Precision : std::uint8_t { kYear, kMonth, kDay, kHour, kMinute, kSecond, kMillisecond };

struct Temporal {
  std::int32_t year = 0;
  std::int8_t month = 1, day = 1, hour = 0, minute = 0, second = 0;
  std::int16_t millisecond = 0;
  std::int16_t tz_minutes = 0;  // offset from UTC when has_tz
  bool has_tz = false;
  Precision precision = Precision::kYear;
};

struct Value {
  ValueKind kind = ValueKind::kBoolean;
  bool boolean = false;
  // Node only: has_element is false for a primitive that exists only as its `_name` extension.
  bool has_element = false;
  bool has_extension = false;
  std::int32_t type = -1;  // FHIR model type index (see model.h); -1: untyped or system value
  std::int32_t node = -1;  // model node describing this node's children; -1: unknown
  std::int64_t integer = 0;
  double decimal = 0;  // Decimal, and a Quantity's value
  Temporal temporal;
  std::string_view text;  // String; a Quantity's unit; TypeInfo name
  std::string_view unit;  // Quantity unit as written (calendar word or UCUM code); TypeInfo ns
  simdjson::dom::element element;
  simdjson::dom::element extension;  // the `_name` sibling object, when has_extension
};

}  // namespace topicbridge::fhirpath
