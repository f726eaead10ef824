// PrintResultJson: a result collection as one JSON array line.
#include <cstdio>

#include "evaluator.h"
#include "temporal.h"

namespace topicbridge::fhirpath {
void AppendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
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
