// %factory: the FHIR type factory API (primitives with extensions, Extension, Coding, Quantity).
// Built elements are JSON texts parsed into documents the Evaluator owns until its next run.
#include "evaluator.h"
#include "functions.h"
#include "temporal.h"

namespace topicbridge::fhirpath {
namespace {

std::string_view FactoryTypeName(Function f) {
  switch (f) {
    case Function::kFactoryString:
      return "string";
    case Function::kFactoryInteger:
      return "integer";
    case Function::kFactoryInteger64:
      return "integer64";
    case Function::kFactoryDecimal:
      return "decimal";
    case Function::kFactoryBoolean:
      return "boolean";
    case Function::kFactoryDate:
      return "date";
    case Function::kFactoryDateTime:
      return "dateTime";
    case Function::kFactoryTime:
      return "time";
    case Function::kFactoryUri:
      return "uri";
    case Function::kFactoryCode:
      return "code";
    default:
      return {};
  }
}

}  // namespace

simdjson::dom::element EvaluatorState::ParseOwned(const std::string& json) {
  if (documents_used_ == documents_.size())
    documents_.push_back(std::make_unique<simdjson::dom::parser>());
  simdjson::dom::element e;
  if (documents_[documents_used_++]->parse(json).get(e)) Fail("%factory built invalid JSON");
  return e;
}

std::string EvaluatorState::JsonOf(const Value& v, std::string* fhir_type) {
  std::string out;
  std::string_view ns;
  std::string_view type = TypeName(v, &ns);
  if (fhir_type) *fhir_type = std::string(type);
  switch (v.kind) {
    case ValueKind::kNode:
      return v.has_element ? simdjson::to_string(v.element) : "null";
    case ValueKind::kString:
      AppendJsonString(out, v.text);
      return out;
    case ValueKind::kBoolean:
      return v.boolean ? "true" : "false";
    case ValueKind::kInteger:
      return std::to_string(v.integer);
    case ValueKind::kDecimal:
      return FormatDecimal(v.decimal);
    case ValueKind::kDate:
    case ValueKind::kDateTime:
    case ValueKind::kTime:
      AppendJsonString(out, FormatTemporal(v.kind, v.temporal));
      return out;
    case ValueKind::kQuantity:
      out = "{\"value\":" + FormatDecimal(v.decimal) + ",\"unit\":";
      AppendJsonString(out, v.unit);
      if (v.boolean) {
        out += ",\"system\":\"http://unitsofmeasure.org\",\"code\":";
        AppendJsonString(out, v.unit);
      }
      return out + "}";
    case ValueKind::kTypeInfo:
      break;
  }
  Fail("%factory cannot build from a type() result");
}

void EvaluatorState::Factory(const AstNode* n, const Scope& scope, Collection& out) {
  if (!n->receiver || n->receiver->kind != NodeKind::kVariable || n->receiver->name != "factory")
    Fail(std::string(n->name) + "() is only available on %factory");
  auto arg = [&](std::size_t i, Collection& into) -> const Value* {
    if (i >= n->args.size()) return nullptr;
    Eval(n->args[i], scope, into);
    if (into.size() > 1)
      Fail("%factory." + std::string(n->name) + "() arguments must be single values");
    return into.empty() ? nullptr : &into[0];
  };
  Temp a0(*this), a1(*this), a2(*this), a3(*this);
  std::string_view primitive = FactoryTypeName(n->function);
  if (!primitive.empty()) {
    const Value* value = arg(0, *a0);
    if (!value) return;
    // The extensions: every item of the second argument.
    std::string extensions;
    if (n->args.size() > 1) {
      Eval(n->args[1], scope, *a1);
      for (const Value& e : *a1) extensions += (extensions.empty() ? "" : ",") + JsonOf(e, nullptr);
    }
    Value node;
    std::int32_t type = model_.FindType(primitive == "integer64" ? "integer" : primitive);
    node = MakeNode(ParseOwned(JsonOf(*value, nullptr)), context_->typed ? type : -1, -1);
    if (!extensions.empty()) {
      node.has_extension = true;
      node.extension = ParseOwned("{\"extension\":[" + extensions + "]}");
    }
    out.push_back(node);
    return;
  }
  std::string json;
  std::string_view type_name;
  if (n->function == Function::kFactoryExtension) {
    const Value* url = arg(0, *a0);
    const Value* value = arg(1, *a1);
    if (!url) return;
    json = "{\"url\":" + JsonOf(*url, nullptr);
    if (value) {
      std::string type;
      std::string text = JsonOf(*value, &type);
      if (!type.empty())
        type[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(type[0])));
      json += ",\"value" + type + "\":" + text;
    }
    json += "}";
    type_name = "Extension";
  } else {
    static constexpr std::string_view kCoding[] = {"system", "code", "display", "version"};
    static constexpr std::string_view kQuantity[] = {"system", "code", "value", "unit"};
    bool coding = n->function == Function::kFactoryCoding;
    Collection* temps[] = {&*a0, &*a1, &*a2, &*a3};
    for (std::size_t i = 0; i < n->args.size(); ++i) {
      const Value* v = arg(i, *temps[i]);
      if (!v) continue;
      json += json.empty() ? "{" : ",";
      AppendJsonString(json, coding ? kCoding[i] : kQuantity[i]);
      json += ":" + JsonOf(*v, nullptr);
    }
    json = json.empty() ? "{}" : json + "}";
    type_name = coding ? "Coding" : "Quantity";
  }
  std::int32_t type = context_->typed ? model_.FindType(type_name) : -1;
  out.push_back(MakeNode(ParseOwned(json), type, type >= 0 ? model_.type(type).node : -1));
}

}  // namespace topicbridge::fhirpath
