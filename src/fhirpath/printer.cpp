// PrintResultJson: a result collection as one JSON array line.
#include <cstdio>

#include "evaluator.h"
#include "temporal.h"
#include "topicbridge/json_writer.h"

namespace topicbridge::fhirpath {
void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  JsonWriter::AppendEscaped(&out, s);
  out += '"';
}

namespace {

void AppendValue(std::string& out, const Value& v) {
  switch (v.kind) {
    case ValueKind::kBoolean:
      out += v.boolean ? "true" : "false";
      return;
    case ValueKind::kInteger:
      if (v.boolean)
        AppendJsonString(out, std::to_string(v.integer));  // Long, as fhirpath.js
      else
        out += std::to_string(v.integer);
      return;
    case ValueKind::kDecimal:
      out += FormatDecimal(v.decimal);
      return;
    case ValueKind::kString:
      AppendJsonString(out, v.text);
      return;
    case ValueKind::kDate:
    case ValueKind::kDateTime:
    case ValueKind::kTime:
      AppendJsonString(out, FormatTemporal(v.kind, v.temporal));
      return;
    case ValueKind::kQuantity:
      AppendJsonString(out, QuantityText(v));
      return;
    case ValueKind::kTypeInfo:
      out += "{\"namespace\":";
      AppendJsonString(out, v.unit);
      out += ",\"name\":";
      AppendJsonString(out, v.text);
      out += '}';
      return;
    case ValueKind::kNode:
      if (v.has_element)
        out += simdjson::to_string(v.element);
      else
        out += "null";
      return;
  }
}

}  // namespace

std::string PrintResultJson(std::span<const Value> values) {
  std::string out = "[";
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (i) out += ',';
    AppendValue(out, values[i]);
  }
  out += ']';
  return out;
}

}  // namespace topicbridge::fhirpath
