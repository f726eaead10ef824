// Tree-walking evaluation, JSON navigation with FHIR typing, and the public evaluation API.
#include "evaluator.h"

#include <cstring>

#include "temporal.h"

namespace topicbridge::fhirpath {

using simdjson::dom::element;
using simdjson::dom::element_type;

void Fail(std::string message) { throw EvalFailure{std::move(message)}; }

Value MakeBoolean(bool b) {
  Value v;
  v.kind = ValueKind::kBoolean;
  v.boolean = b;
  return v;
}
Value MakeInteger(std::int64_t i) {
  Value v;
  v.kind = ValueKind::kInteger;
  v.integer = i;
  return v;
}
Value MakeDecimal(double d) {
  Value v;
  v.kind = ValueKind::kDecimal;
  v.decimal = d;
  v.integer = -1;  // scale unknown
  return v;
}
Value MakeString(std::string_view s) {
  Value v;
  v.kind = ValueKind::kString;
  v.text = s;
  return v;
}

EvaluatorState::EvaluatorState() : model_(Model::R4()) {}

Collection* EvaluatorState::Acquire() {
  if (free_.empty()) {
    all_.push_back(std::make_unique<Collection>());
    return all_.back().get();
  }
  Collection* c = free_.back();
  free_.pop_back();
  return c;
}

void EvaluatorState::Release(Collection* c) {
  c->clear();
  free_.push_back(c);
}

std::string_view EvaluatorState::Store(std::string_view s) {
  if (strings_used_ == strings_.size()) strings_.push_back(std::make_unique<std::string>());
  std::string& slot = *strings_[strings_used_++];
  slot.assign(s);
  return slot;
}

void EvaluatorState::Run(const Ast& ast, const Context& context) {
  context_ = &context;
  now_.reset();
  result_.clear();
  root_.clear();
  strings_used_ = 0;
  documents_used_ = 0;
  if (context.resource) root_.push_back(MakeResourceNode(*context.resource));
  Scope scope;
  scope.focus = &root_;
  scope.this_value = root_.empty() ? nullptr : &root_[0];
  Eval(ast.root, scope, result_);
  // Primitives that exist only as extensions have no value to report (as fhirpath.js).
  std::erase_if(result_,
                [](const Value& v) { return v.kind == ValueKind::kNode && !v.has_element; });
}

Value EvaluatorState::MakeNode(element e, std::int32_t type, std::int32_t node) const {
  Value v;
  v.kind = ValueKind::kNode;
  v.element = e;
  v.has_element = true;
  v.type = type;
  v.node = node;
  return v;
}

Value EvaluatorState::MakeResourceNode(element e) const {
  std::int32_t type = -1, node = -1;
  std::string_view rt;
  if (context_ && context_->typed && e.is_object() && !e["resourceType"].get(rt)) {
    type = model_.FindType(rt);
    if (type >= 0) node = model_.type(type).node;
  }
  return MakeNode(e, type, node);
}

namespace {

bool IsResourceType(const Model& m, std::int32_t type) {
  return type >= 0 && m.type(type).resource;
}

bool IsNull(element e) { return e.type() == element_type::NULL_VALUE; }

bool IsObjectOrObjects(element e) {
  if (e.type() == element_type::OBJECT) return true;
  simdjson::dom::array arr;
  return !e.get_array().get(arr) && arr.size() > 0 && (*arr.begin()).type() == element_type::OBJECT;
}

}  // namespace

void EvaluatorState::AppendJsonValue(element e, Collection& out) const {
  simdjson::dom::array arr;
  if (!e.get_array().get(arr)) {
    for (element item : arr) {
      if (!IsNull(item)) out.push_back(MakeResourceNode(item));
    }
  } else if (!IsNull(e)) {
    out.push_back(MakeResourceNode(e));
  }
}

namespace {

// Pushes the items of one JSON property and its `_name` sibling, zipped by position.
struct ChildAdder {
  const EvaluatorState& state;
  const Model& model;
  Collection& out;

  void Add(bool has_value, element value, bool has_ext, element ext, std::int32_t type,
           std::int32_t node) {
    simdjson::dom::array values, exts;
    bool value_array = has_value && !value.get_array().get(values);
    bool ext_array = has_ext && !ext.get_array().get(exts);
    if (value_array || ext_array) {
      std::size_t n = std::max(value_array ? values.size() : 0, ext_array ? exts.size() : 0);
      for (std::size_t i = 0; i < n; ++i) {
        element v, x;
        bool hv = value_array && i < values.size() && !values.at(i).get(v) && !IsNull(v);
        bool hx = ext_array && i < exts.size() && !exts.at(i).get(x) && !IsNull(x);
        if (hv || hx) Push(hv, v, hx, x, type, node);
      }
      return;
    }
    if (has_value && IsNull(value)) has_value = false;
    if (has_ext && IsNull(ext)) has_ext = false;
    if (has_value || has_ext) Push(has_value, value, has_ext, ext, type, node);
  }

  void Push(bool hv, element v, bool hx, element x, std::int32_t type, std::int32_t node) {
    Value item;
    if (hv && IsResourceType(model, type)) {
      item = state.MakeResourceNode(v);
    } else {
      item = state.MakeNode(v, type, node);
    }
    item.has_element = hv;
    item.has_extension = hx;
    if (hx) item.extension = x;
    out.push_back(item);
  }
};

}  // namespace

void EvaluatorState::AppendChildren(const Value& item, std::string_view name,
                                    std::string_view sibling, Collection& out) const {
  if (item.kind == ValueKind::kQuantity) {
    if (name == "value") {
      Value v = MakeDecimal(item.decimal);
      v.integer = item.integer;
      out.push_back(v);
    } else if (name == "unit" || name == "code") {
      out.push_back(MakeString(item.unit));
    } else if (name == "system" && item.boolean) {
      out.push_back(MakeString("http://unitsofmeasure.org"));
    }
    return;
  }
  if (item.kind == ValueKind::kTypeInfo) {
    if (name == "name") out.push_back(MakeString(item.text));
    if (name == "namespace") out.push_back(MakeString(item.unit));
    return;
  }
  if (item.kind != ValueKind::kNode) return;
  ChildAdder adder{*this, model_, out};
  simdjson::dom::object obj;
  if (!item.has_element || item.element.get_object().get(obj)) {
    // A primitive: its children (id, extension) live in the `_name` sibling object.
    simdjson::dom::object ext;
    if (!item.has_extension || item.extension.get_object().get(ext)) return;
    element child;
    if (ext.at_key(name).get(child)) return;
    std::int32_t type = -1, node = -1;
    if (name == "extension") {
      type = model_.FindType("Extension");
      node = type >= 0 ? model_.type(type).node : -1;
    }
    adder.Add(true, child, false, element(), context_->typed ? type : -1,
              context_->typed ? node : -1);
    return;
  }
  const ModelField* field = item.node >= 0 ? model_.node(item.node).Find(name) : nullptr;
  if (field && !field->choices.empty()) {
    const auto& fields = model_.node(item.node).fields;
    for (std::int32_t c : field->choices) {
      const ModelField& f = fields[c];
      char key[96];
      if (f.name.size() + 2 > sizeof key) continue;
      key[0] = '_';
      std::memcpy(key + 1, f.name.data(), f.name.size());
      element value, ext;
      bool hv = !obj.at_key(f.name).get(value);
      bool hx = !obj.at_key(std::string_view(key, f.name.size() + 1)).get(ext);
      adder.Add(hv, value, hx, ext, f.type, f.node);
    }
    return;
  }
  element value, ext;
  bool hv = false, hx = false;
  bool primitive = field && field->type >= 0 && model_.type(field->type).primitive;
  if (!primitive) {
    // Only primitives have `_name` siblings: an object, or array of objects, needs no second
    // lookup.
    hv = !obj.at_key(name).get(value);
    if (!sibling.empty() && (!hv || !IsObjectOrObjects(value))) hx = !obj.at_key(sibling).get(ext);
  } else {
    // A primitive: one pass finds both `name` and `_name`.
    for (auto f : obj) {
      std::string_view key = f.key;
      if (key.size() == name.size() && key == name) {
        value = f.value;
        hv = true;
        if (hx) break;
      } else if (key.size() == sibling.size() && key == sibling) {
        ext = f.value;
        hx = true;
        if (hv) break;
      }
    }
  }
  if (!hv && !hx) return;
  adder.Add(hv, value, hx, ext, field ? field->type : -1, field ? field->node : -1);
}

void EvaluatorState::AllChildren(const Value& item, Collection& out) const {
  if (item.kind != ValueKind::kNode) return;
  simdjson::dom::object obj;
  if (!item.has_element || item.element.get_object().get(obj)) {
    // A primitive's children (id, extension) live in its `_name` sibling.
    simdjson::dom::object ext;
    if (!item.has_extension || item.extension.get_object().get(ext)) return;
    for (auto field : ext) AppendChildren(item, field.key, std::string_view(), out);
    return;
  }
  for (auto field : obj) {
    std::string_view key = field.key;
    if (key.size() > 1 && key[0] == '_') {
      // A primitive that exists only as its `_name` extension.
      element value;
      if (!obj.at_key(key.substr(1)).get(value)) continue;
      const ModelField* f = item.node >= 0 ? model_.node(item.node).Find(key.substr(1)) : nullptr;
      ChildAdder{*this, model_, out}.Add(false, element(), true, field.value, f ? f->type : -1,
                                         f ? f->node : -1);
      continue;
    }
    if (key.empty() || key == "resourceType") continue;
    const ModelField* f = item.node >= 0 ? model_.node(item.node).Find(key) : nullptr;
    char sibling[128];
    if (key.size() + 1 > sizeof sibling) continue;
    sibling[0] = '_';
    std::memcpy(sibling + 1, key.data(), key.size());
    element ext;
    bool hx = !obj.at_key(std::string_view(sibling, key.size() + 1)).get(ext);
    ChildAdder{*this, model_, out}.Add(true, field.value, hx, ext, f ? f->type : -1,
                                       f ? f->node : -1);
  }
}

bool EvaluatorState::ToSystem(const Value& v, Value& out) const {
  if (v.kind != ValueKind::kNode) {
    out = v;
    return true;
  }
  if (!v.has_element) return false;
  const PrimitiveKind kind = v.type >= 0 ? model_.type(v.type).kind : PrimitiveKind::kNone;
  element e = v.element;
  switch (e.type()) {
    case element_type::STRING: {
      std::string_view s;
      IgnoreError(e.get(s));
      // Only the fields the kind uses are set: a Value's other fields are ignored.
      if (kind == PrimitiveKind::kDate) {
        out.kind = ValueKind::kDate;
        if (ParseDate(s, out.temporal)) return true;
      } else if (kind == PrimitiveKind::kDateTime) {
        out.kind = ValueKind::kDateTime;
        if (ParseDateTime(s, out.temporal)) return true;
      } else if (kind == PrimitiveKind::kTime) {
        out.kind = ValueKind::kTime;
        if (ParseTime(s, out.temporal)) return true;
      }
      out.kind = ValueKind::kString;
      out.text = s;
      return true;
    }
    case element_type::INT64:
    case element_type::UINT64: {
      std::int64_t i = 0;
      if (e.get(i)) {
        std::uint64_t u = 0;
        IgnoreError(e.get(u));
        out = MakeDecimal(static_cast<double>(u));
        return true;
      }
      if (kind == PrimitiveKind::kDecimal) {
        out.kind = ValueKind::kDecimal;
        out.decimal = static_cast<double>(i);
        out.integer = 0;
      } else {
        out.kind = ValueKind::kInteger;
        out.integer = i;
        out.boolean = false;
      }
      return true;
    }
    case element_type::DOUBLE: {
      out.kind = ValueKind::kDecimal;
      IgnoreError(e.get(out.decimal));
      out.integer = -1;
      return true;
    }
    case element_type::BOOL:
      out.kind = ValueKind::kBoolean;
      IgnoreError(e.get(out.boolean));
      return true;
    case element_type::OBJECT: {
      if (v.type < 0 || !model_.type(v.type).quantity) return false;
      double value = 0;
      element ve = e["value"].value_unsafe();
      if (e["value"].error() || (ve.get(value) && ve.is_int64() == false)) return false;
      if (ve.is_int64()) value = static_cast<double>(ve.get_int64().value_unsafe());
      std::string_view unit, code, system;
      IgnoreError(e["unit"].get(unit));
      bool has_code = !e["code"].get(code);
      IgnoreError(e["system"].get(system));
      out = Value();
      out.kind = ValueKind::kQuantity;
      out.decimal = value;
      out.integer = -1;
      out.boolean = true;  // UCUM
      out.unit =
          has_code && (system.empty() || system == "http://unitsofmeasure.org") ? code : unit;
      return true;
    }
    default:
      return false;
  }
}

std::string_view EvaluatorState::TypeName(const Value& v, std::string_view* ns) const {
  *ns = "System";
  switch (v.kind) {
    case ValueKind::kBoolean:
      return "Boolean";
    case ValueKind::kInteger:
      return v.boolean ? "Long" : "Integer";
    case ValueKind::kDecimal:
      return "Decimal";
    case ValueKind::kString:
      return "String";
    case ValueKind::kDate:
      return "Date";
    case ValueKind::kDateTime:
      return "DateTime";
    case ValueKind::kTime:
      return "Time";
    case ValueKind::kQuantity:
      return "Quantity";
    case ValueKind::kTypeInfo:
      return "TypeInfo";
    case ValueKind::kNode:
      break;
  }
  if (v.type >= 0) {
    std::string_view n = model_.type(v.type).name;
    if (n.starts_with("System.")) return n.substr(7);
    *ns = "FHIR";
    return n;
  }
  if (!v.has_element) return "Object";
  switch (v.element.type()) {
    case element_type::STRING:
      return "String";
    case element_type::INT64:
    case element_type::UINT64:
      return "Integer";
    case element_type::DOUBLE:
      return "Decimal";
    case element_type::BOOL:
      return "Boolean";
    default:
      return "Object";
  }
}

namespace {

constexpr std::string_view kSystemTypes[] = {"Boolean", "String",   "Integer", "Long",    "Decimal",
                                             "Date",    "DateTime", "Time",    "Quantity"};

bool IsSystemType(std::string_view name) {
  for (auto t : kSystemTypes) {
    if (t == name) return true;
  }
  return false;
}

// The System type a FHIR primitive's value has ("code" -> "String").
std::string_view SystemTypeOf(const Model& m, std::int32_t type) {
  switch (m.type(type).kind) {
    case PrimitiveKind::kString:
      return "String";
    case PrimitiveKind::kInteger:
      return "Integer";
    case PrimitiveKind::kDecimal:
      return "Decimal";
    case PrimitiveKind::kBoolean:
      return "Boolean";
    case PrimitiveKind::kDate:
      return "Date";
    case PrimitiveKind::kDateTime:
      return "DateTime";
    case PrimitiveKind::kTime:
      return "Time";
    case PrimitiveKind::kNone:
      break;
  }
  return {};
}

}  // namespace

bool EvaluatorState::IsType(const Value& v, std::string_view spec) const {
  std::string_view ns;
  if (spec.starts_with("System."))
    ns = "System", spec.remove_prefix(7);
  else if (spec.starts_with("FHIR."))
    ns = "FHIR", spec.remove_prefix(5);
  std::int32_t t = ns == "System" ? -1 : model_.FindType(spec);
  bool system = ns != "FHIR" && IsSystemType(spec);
  if (t < 0 && !system) Fail("unknown type '" + std::string(spec) + "'");
  std::string_view vns;
  std::string_view name = TypeName(v, &vns);
  if (vns == "FHIR") {
    if (t >= 0 && model_.IsA(v.type, t)) return true;
    return system && SystemTypeOf(model_, v.type) == spec;
  }
  if (system) return name == spec;
  // Untyped JSON: a FHIR primitive type name matches the value's System type.
  return model_.type(t).primitive && SystemTypeOf(model_, t) == name;
}

void EvaluatorState::Variable(const AstNode* n, Collection& out) {
  const Context& c = *context_;
  std::string_view name = n->name;
  if (const element* e = c.FindVariable(name)) return AppendJsonValue(*e, out);
  auto push = [&](const std::optional<element>& e) {
    if (e) out.push_back(MakeResourceNode(*e));
  };
  if (name == "resource") return push(c.resource);
  if (name == "context") return push(c.context ? c.context : c.resource);
  if (name == "rootResource") return push(c.resource);
  if (name == "current") return push(c.current);
  if (name == "previous") return push(c.previous);
  if (name == "factory") return out.push_back(MakeString("%factory"));
  if (name == "ucum") return out.push_back(MakeString("http://unitsofmeasure.org"));
  if (name == "sct") return out.push_back(MakeString("http://snomed.info/sct"));
  if (name == "loinc") return out.push_back(MakeString("http://loinc.org"));
  if (name.starts_with("vs-")) {
    std::string url = "http://hl7.org/fhir/ValueSet/" + std::string(name.substr(3));
    return out.push_back(MakeString(Store(url)));
  }
  if (name.starts_with("ext-")) {
    std::string url = "http://hl7.org/fhir/StructureDefinition/" + std::string(name.substr(4));
    return out.push_back(MakeString(Store(url)));
  }
  Fail("undefined variable %" + std::string(name));
}

void EvaluatorState::Eval(const AstNode* n, const Scope& scope, Collection& out) {
  switch (n->kind) {
    case NodeKind::kLiteral:
      out.push_back(n->literal);
      return;
    case NodeKind::kEmpty:
      return;
    case NodeKind::kThis:
      if (scope.this_value)
        out.push_back(*scope.this_value);
      else
        out.insert(out.end(), scope.focus->begin(), scope.focus->end());
      return;
    case NodeKind::kIndex:
      out.push_back(MakeInteger(scope.index));
      return;
    case NodeKind::kTotal:
      if (scope.total) out.insert(out.end(), scope.total->begin(), scope.total->end());
      return;
    case NodeKind::kVariable:
      return Variable(n, out);
    case NodeKind::kMember: {
      Temp input(*this);
      if (n->receiver) Eval(n->receiver, scope, *input);
      const Collection& in = n->receiver ? *input : *scope.focus;
      bool type_name = !n->name.empty() && n->name[0] >= 'A' && n->name[0] <= 'Z';
      for (const Value& item : in) {
        if (type_name && item.kind == ValueKind::kNode && item.has_element) {
          std::string_view rt;
          bool is_type =
              item.element.is_object() && !item.element["resourceType"].get(rt) && rt == n->name;
          if (!is_type && item.type >= 0) {
            std::int32_t t = model_.FindType(n->name);
            is_type = t >= 0 && model_.IsA(item.type, t);
          }
          if (is_type) {
            out.push_back(item);
            continue;
          }
        }
        AppendChildren(item, n->name, n->sibling, out);
      }
      return;
    }
    case NodeKind::kFunction:
      return Call(n, scope, out);
    case NodeKind::kIndexer: {
      Temp input(*this), index(*this);
      Eval(n->receiver, scope, *input);
      Eval(n->args[0], scope, *index);
      if (index->empty()) return;
      Value i;
      if (index->size() != 1 || !ToSystem((*index)[0], i) || i.kind != ValueKind::kInteger)
        Fail("an index must be a single Integer");
      if (i.integer >= 0 && static_cast<std::size_t>(i.integer) < input->size())
        out.push_back((*input)[i.integer]);
      return;
    }
    case NodeKind::kUnary: {
      Temp input(*this);
      Eval(n->receiver, scope, *input);
      if (input->empty()) return;
      Value v;
      if (input->size() != 1 || !ToSystem((*input)[0], v))
        Fail("unary operator requires a single value");
      if (n->op == BinaryOp::kMinus) {
        if (v.kind == ValueKind::kInteger)
          v.integer = -v.integer;
        else if (v.kind == ValueKind::kDecimal || v.kind == ValueKind::kQuantity)
          v.decimal = -v.decimal;
        else
          Fail("unary '-' requires a number or a Quantity");
      } else if (v.kind != ValueKind::kInteger && v.kind != ValueKind::kDecimal &&
                 v.kind != ValueKind::kQuantity) {
        Fail("unary '+' requires a number or a Quantity");
      }
      out.push_back(v);
      return;
    }
    case NodeKind::kTypeTest: {
      Temp input(*this);
      Eval(n->receiver, scope, *input);
      if (input->empty()) return;
      if (input->size() > 1)
        Fail(std::string(n->op == BinaryOp::kIs ? "'is'" : "'as'") + " requires a single item");
      bool match = IsType((*input)[0], n->name);
      if (n->op == BinaryOp::kIs)
        out.push_back(MakeBoolean(match));
      else if (match)
        out.push_back((*input)[0]);
      return;
    }
    case NodeKind::kBinary:
      return Binary(n, scope, out);
  }
}

// ---------------------------------------------------------------------------------------------
// Public API

void Context::SetVariable(std::string name, simdjson::dom::element value) {
  variables_[std::move(name)] = value;
}

bool Context::SetVariableJson(std::string name, std::string_view json) {
  auto parser = std::make_unique<simdjson::dom::parser>();
  element e;
  if (parser->parse(json.data(), json.size()).get(e)) return false;
  owned_documents_.push_back(std::move(parser));
  SetVariable(std::move(name), e);
  return true;
}

const simdjson::dom::element* Context::FindVariable(std::string_view name) const {
  auto it = variables_.find(name);
  return it == variables_.end() ? nullptr : &it->second;
}

Evaluator::Evaluator() : state_(std::make_unique<EvaluatorState>()) {}
Evaluator::~Evaluator() = default;

EvalResult Evaluator::Evaluate(const Expression& expression, const Context& context) {
  EvalResult r;
  if (last_expression_ != expression.ast_) last_expression_ = expression.ast_;
  try {
    state_->Run(expression.ast(), context);
    r.values_ = state_->result();
  } catch (const EvalFailure& f) {
    r.error_ = EvalError{f.message};
  } catch (const std::exception& e) {
    r.error_ = EvalError{std::string("internal error: ") + e.what()};
  } catch (...) {
    r.error_ = EvalError{"internal error"};
  }
  return r;
}

std::variant<bool, EvalError> Evaluator::EvaluatesToTrue(const Expression& expression,
                                                         const Context& context) {
  EvalResult r = Evaluate(expression, context);
  if (!r.ok()) return r.error();
  auto values = r.values();
  if (values.empty()) return false;
  if (values.size() > 1)
    return EvalError{"criteria returned " + std::to_string(values.size()) +
                     " items, expected one Boolean"};
  // FHIRPath singleton evaluation: one non-Boolean item counts as true.
  Value v;
  if (!state_->ToSystem(values[0], v) || v.kind != ValueKind::kBoolean) return true;
  return v.boolean;
}

namespace {
Evaluator& ThreadEvaluator() {
  thread_local Evaluator evaluator;
  return evaluator;
}
}  // namespace

EvalResult Evaluate(const Expression& expression, const Context& context) {
  return ThreadEvaluator().Evaluate(expression, context);
}

std::variant<bool, EvalError> EvaluatesToTrue(const Expression& expression,
                                              const Context& context) {
  return ThreadEvaluator().EvaluatesToTrue(expression, context);
}

}  // namespace topicbridge::fhirpath
