// Conversion (toX / convertsToX) and math functions.
#include <cmath>

#include "evaluator.h"
#include "functions.h"
#include "quantity.h"
#include "temporal.h"

namespace topicbridge::fhirpath {
namespace {

bool ParseNumberText(std::string_view t, Value& out, bool want_decimal) {
  std::size_t i = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
  std::size_t digits = i;
  while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
  if (i == digits) return false;
  bool dec = false;
  if (i < t.size() && t[i] == '.') {
    if (!want_decimal) return false;
    std::size_t f = ++i;
    while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
    if (i == f) return false;
    dec = true;
  }
  if (i != t.size()) return false;
  std::string s(t);
  if (want_decimal) {
    out = MakeDecimal(std::strtod(s.c_str(), nullptr));
    out.integer = dec ? static_cast<std::int64_t>(s.size() - s.find('.') - 1) : 0;
  } else {
    out = MakeInteger(std::strtoll(s.c_str(), nullptr, 10));
  }
  return true;
}

std::string Lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

// "1 'wk'", "12 months", "3.5" -> Quantity.
bool ParseQuantityText(std::string_view s, Value& out) {
  std::size_t sp = s.find(' ');
  Value number;
  if (!ParseNumberText(s.substr(0, sp), number, true)) return false;
  out = Value();
  out.kind = ValueKind::kQuantity;
  out.decimal = number.decimal;
  out.integer = number.integer;
  out.boolean = true;
  out.unit = "1";
  if (sp == std::string_view::npos) return true;
  std::string_view unit = s.substr(sp + 1);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  if (unit.size() >= 2 && unit.front() == '\'' && unit.back() == '\'') {
    out.unit = unit.substr(1, unit.size() - 2);
    return true;
  }
  if (CalendarSingular(unit).empty()) return false;
  out.boolean = false;
  out.unit = unit;
  return true;
}

}  // namespace

std::string QuantityText(const Value& q) {
  std::string s = FormatDecimal(q.decimal) + " ";
  if (q.boolean)
    s += "'" + std::string(q.unit) + "'";
  else
    s += q.unit;
  return s;
}

namespace {

std::optional<Value> ToBooleanValue(const Value& v) {
  if (v.kind == ValueKind::kBoolean) return v;
  if (v.kind == ValueKind::kInteger && (v.integer == 0 || v.integer == 1))
    return MakeBoolean(v.integer == 1);
  if (v.kind == ValueKind::kDecimal && (v.decimal == 0 || v.decimal == 1))
    return MakeBoolean(v.decimal == 1);
  if (v.kind != ValueKind::kString) return std::nullopt;
  std::string s = Lower(v.text);
  if (s == "true" || s == "t" || s == "yes" || s == "y" || s == "1" || s == "1.0")
    return MakeBoolean(true);
  if (s == "false" || s == "f" || s == "no" || s == "n" || s == "0" || s == "0.0")
    return MakeBoolean(false);
  return std::nullopt;
}

std::optional<Value> ToIntegerValue(const Value& v, bool is_long) {
  Value t;
  if (v.kind == ValueKind::kInteger)
    t = v;
  else if (v.kind == ValueKind::kBoolean)
    t = MakeInteger(v.boolean ? 1 : 0);
  else if (v.kind != ValueKind::kString || !ParseNumberText(v.text, t, false))
    return std::nullopt;
  t.boolean = is_long;
  return t;
}

std::optional<Value> ToDecimalValue(const Value& v) {
  Value t;
  if (v.kind == ValueKind::kDecimal) return v;
  if (v.kind == ValueKind::kInteger)
    t = MakeDecimal(static_cast<double>(v.integer)), t.integer = 0;
  else if (v.kind == ValueKind::kBoolean)
    t = MakeDecimal(v.boolean ? 1 : 0), t.integer = 1;
  else if (v.kind != ValueKind::kString || !ParseNumberText(v.text, t, true))
    return std::nullopt;
  return t;
}

// toDate/toDateTime/toTime: `kind` is the target.
std::optional<Value> ToTemporalValue(const Value& v, ValueKind kind) {
  Value t = v;
  if (v.kind == kind) return v;
  if (kind == ValueKind::kDate && v.kind == ValueKind::kDateTime) {
    t.kind = ValueKind::kDate;
  } else if (kind == ValueKind::kDateTime && v.kind == ValueKind::kDate) {
    t.kind = ValueKind::kDateTime;
    return t;
  } else if (v.kind == ValueKind::kString) {
    t = Value();
    t.kind = kind;
    std::string_view s = v.text;
    bool ok = kind == ValueKind::kTime ? ParseTime(s.starts_with("T") ? s.substr(1) : s, t.temporal)
              : kind == ValueKind::kDateTime
                  ? ParseDateTime(s, t.temporal)
                  : ParseDate(s, t.temporal) || ParseDateTime(s, t.temporal);
    if (!ok) return std::nullopt;
  } else {
    return std::nullopt;
  }
  if (kind == ValueKind::kDate) {  // a DateTime read as a Date keeps its date part
    t.temporal.precision = std::min(t.temporal.precision, Precision::kDay);
    t.temporal.has_tz = false;
  }
  return t;
}

Value DimensionlessQuantity(double value, std::int64_t scale) {
  Value t;
  t.kind = ValueKind::kQuantity;
  t.decimal = value;
  t.integer = scale;
  t.boolean = true;
  t.unit = "1";
  return t;
}

// `q` expressed in `target` (a UCUM code or calendar keyword), as toQuantity(unit) does.
std::optional<double> ConvertQuantity(const Value& q, std::string_view target) {
  std::string_view from_word = q.boolean ? std::string_view() : CalendarSingular(q.unit);
  std::string_view to_word = CalendarSingular(target);
  bool from_ym = from_word == "year" || from_word == "month";
  bool to_ym = to_word == "year" || to_word == "month";
  std::string_view from_ucum = q.boolean ? q.unit : CalendarToUcum(from_word);
  std::string_view to_ucum = to_word.empty() ? target : CalendarToUcum(to_word);
  if (from_ym == to_ym) {
    // UCUM 'a' and 'mo' are fixed lengths, not calendar years and months.
    bool ucum_ym_to_word = q.boolean && (q.unit == "a" || q.unit == "mo") && !to_word.empty();
    if (ucum_ym_to_word) return std::nullopt;
    return ConvertUnit(q.decimal, from_ucum, to_ucum);
  }
  if (!from_ym) return std::nullopt;
  // A calendar year is 365 days and a month 30 days when turned into fixed durations.
  auto to = ParseUcum(to_ucum), seconds = ParseUcum("s");
  if (!to || !to->SameDimension(*seconds)) return std::nullopt;
  return q.decimal * (from_word == "year" ? 31536000.0 : 2592000.0) / to->factor;
}

}  // namespace

std::optional<Value> EvaluatorState::ToStringValue(const Value& v) {
  switch (v.kind) {
    case ValueKind::kString:
      return v;
    case ValueKind::kBoolean:
      return MakeString(v.boolean ? "true" : "false");
    case ValueKind::kInteger:
      return MakeString(Store(std::to_string(v.integer)));
    case ValueKind::kDecimal:
      return MakeString(Store(FormatDecimal(v.decimal)));
    case ValueKind::kDate:
    case ValueKind::kDateTime:
    case ValueKind::kTime:
      return MakeString(Store(FormatTemporal(v.kind, v.temporal)));
    case ValueKind::kQuantity:
      return MakeString(Store(QuantityText(v)));
    default:
      return std::nullopt;
  }
}

std::optional<Value> EvaluatorState::ToQuantityValue(const AstNode* n, const Scope& scope,
                                                     const Value& v) {
  std::optional<Value> r;
  Value t;
  if (v.kind == ValueKind::kQuantity)
    r = v;
  else if (v.kind == ValueKind::kInteger && v.boolean)
    return std::nullopt;  // Long
  else if (IsNumber(v))
    r = DimensionlessQuantity(NumberOf(v), v.kind == ValueKind::kInteger ? 0 : v.integer);
  else if (v.kind == ValueKind::kBoolean)
    r = DimensionlessQuantity(v.boolean ? 1 : 0, 0);
  else if (v.kind == ValueKind::kString && ParseQuantityText(v.text, t))
    r = t, r->unit = Store(t.unit);
  if (!r || n->args.empty()) return r;
  Temp u(*this);
  Eval(n->args[0], scope, *u);
  Value unit;
  if (u->size() != 1 || !ToSystem((*u)[0], unit) || unit.kind != ValueKind::kString)
    Fail("toQuantity() unit must be a String");
  auto converted = ConvertQuantity(*r, unit.text);
  if (!converted) return std::nullopt;
  r->decimal = *converted;
  r->integer = -1;
  r->boolean = CalendarSingular(unit.text).empty();
  r->unit = Store(unit.text);
  return r;
}

void EvaluatorState::Convert(const AstNode* n, const Scope& scope, const Collection& in,
                             Collection& out) {
  if (in.empty()) return;
  if (in.size() > 1)
    Fail(std::string(n->name) + "() requires a single item, got " + std::to_string(in.size()));
  Value v;
  if (!ToSystem(in[0], v)) return;
  std::optional<Value> r;
  switch (n->function) {
    case Function::kToBoolean:
    case Function::kConvertsToBoolean:
      r = ToBooleanValue(v);
      break;
    case Function::kToInteger:
    case Function::kConvertsToInteger:
      r = ToIntegerValue(v, false);
      break;
    case Function::kToLong:
    case Function::kConvertsToLong:
      r = ToIntegerValue(v, true);
      break;
    case Function::kToDecimal:
    case Function::kConvertsToDecimal:
      r = ToDecimalValue(v);
      break;
    case Function::kToString:
    case Function::kConvertsToString:
      r = ToStringValue(v);
      break;
    case Function::kToDate:
    case Function::kConvertsToDate:
      r = ToTemporalValue(v, ValueKind::kDate);
      break;
    case Function::kToDateTime:
    case Function::kConvertsToDateTime:
      r = ToTemporalValue(v, ValueKind::kDateTime);
      break;
    case Function::kToTime:
    case Function::kConvertsToTime:
      r = ToTemporalValue(v, ValueKind::kTime);
      break;
    case Function::kToQuantity:
    case Function::kConvertsToQuantity:
      r = ToQuantityValue(n, scope, v);
      break;
    default:
      break;
  }
  if (n->name.starts_with("convertsTo"))
    out.push_back(MakeBoolean(r.has_value()));
  else if (r)
    out.push_back(*r);
}

void EvaluatorState::Math(const AstNode* n, const Scope& scope, const Collection& in,
                          Collection& out) {
  if (in.empty()) return;
  if (in.size() > 1) Fail(std::string(n->name) + "() requires a single number");
  Value v;
  if (!ToSystem(in[0], v)) return;
  bool quantity = v.kind == ValueKind::kQuantity;
  if (!IsNumber(v) && !quantity) Fail(std::string(n->name) + "() requires a number");
  double x = quantity ? v.decimal : NumberOf(v);
  std::optional<double> arg;
  if (!n->args.empty()) {
    Temp a(*this);
    Eval(n->args[0], scope, *a);
    Value av;
    if (a->size() > 1) Fail(std::string(n->name) + "() argument must be a single number");
    if (!a->empty() && ToSystem((*a)[0], av)) {
      if (!IsNumber(av)) Fail(std::string(n->name) + "() argument must be a number");
      arg = NumberOf(av);
    }
  }
  auto push = [&](double r, bool integer) {
    if (std::isnan(r) || std::isinf(r)) return;
    if (quantity) {
      Value q = v;
      q.decimal = r;
      out.push_back(q);
    } else if (integer) {
      out.push_back(MakeInteger(static_cast<std::int64_t>(r)));
    } else {
      out.push_back(MakeDecimal(r));
    }
  };
  bool is_int = v.kind == ValueKind::kInteger;
  switch (n->function) {
    case Function::kAbs:
      return push(std::fabs(x), is_int);
    case Function::kCeiling:
      return push(std::ceil(x), !quantity);
    case Function::kFloor:
      return push(std::floor(x), !quantity);
    case Function::kTruncate:
      return push(std::trunc(x), !quantity);
    case Function::kExp:
      return push(std::exp(x), false);
    case Function::kLn:
      return push(std::log(x), false);
    case Function::kSqrt:
      return push(std::sqrt(x), false);
    case Function::kLog:
      if (!arg) return;
      return push(std::log(x) / std::log(*arg), false);
    case Function::kPower: {
      if (!arg) return;
      double r = std::pow(x, *arg);
      bool int_result = is_int && *arg == std::trunc(*arg) && *arg >= 0 && std::fabs(r) < 9e15;
      if (!int_result) {
        char buf[40];
        std::snprintf(buf, sizeof buf, "%.14g", r);
        r = std::strtod(buf, nullptr);
      }
      return push(r, int_result);
    }
    case Function::kRound: {
      int digits = arg ? static_cast<int>(*arg) : 0;
      if (digits < 0) Fail("round() precision must be >= 0");
      double f = std::pow(10.0, digits);
      double r = std::round(x * f) / f;
      Value d = MakeDecimal(r);
      d.integer = digits;
      if (quantity) return push(r, false);
      out.push_back(d);
      return;
    }
    default:
      return;
  }
}

}  // namespace topicbridge::fhirpath
