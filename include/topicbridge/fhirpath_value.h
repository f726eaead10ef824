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
  // Only the fields of `kind` are meaningful; the others may hold stale data.
  ValueKind kind = ValueKind::kBoolean;
  // Boolean: the value. Integer: true for a Long. Quantity: true when `unit` is a UCUM code,
  // false when it is a calendar keyword ("days").
  bool boolean = false;
  // Node only: has_element is false for a primitive that exists only as its `_name` extension.
  bool has_element = false;
  bool has_extension = false;
  std::int32_t type = -1;  // Node: FHIR model type index (model.h); -1 when untyped
  std::int32_t node = -1;  // Node: model node describing its children; -1 when unknown
  // Integer: the value. Decimal and Quantity: digits after the point as written (-1 unknown),
  // which equivalence (~) rounds to.
  std::int64_t integer = 0;
  double decimal = 0;     // Decimal, and a Quantity's value
  Temporal temporal;      // Date, DateTime, Time
  std::string_view text;  // String; TypeInfo name
  std::string_view unit;  // Quantity unit (UCUM code or calendar keyword); TypeInfo namespace
  simdjson::dom::element element;    // Node, when has_element
  simdjson::dom::element extension;  // Node: the `_name` sibling object, when has_extension
};

}  // namespace topicbridge::fhirpath
