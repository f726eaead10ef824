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

void EvaluatorState::Convert(const AstNode* n, const Scope& scope, const Collection& in,
                             Collection& out) {
  if (in.empty()) return;
  if (in.size() > 1)
    Fail(std::string(n->name) + "() requires a single item, got " + std::to_string(in.size()));
  Value v;
  if (!ToSystem(in[0], v)) return;
  bool test = n->name.starts_with("convertsTo");
  std::optional<Value> r;
  Value t;
  switch (n->function) {
    case Function::kToBoolean:
    case Function::kConvertsToBoolean:
      if (v.kind == ValueKind::kBoolean)
        r = v;
      else if (v.kind == ValueKind::kInteger && (v.integer == 0 || v.integer == 1))
        r = MakeBoolean(v.integer == 1);
      else if (v.kind == ValueKind::kDecimal && (v.decimal == 0 || v.decimal == 1))
        r = MakeBoolean(v.decimal == 1);
      else if (v.kind == ValueKind::kString) {
        std::string s = Lower(v.text);
        if (s == "true" || s == "t" || s == "yes" || s == "y" || s == "1" || s == "1.0")
          r = MakeBoolean(true);
        if (s == "false" || s == "f" || s == "no" || s == "n" || s == "0" || s == "0.0")
          r = MakeBoolean(false);
      }
      break;
    case Function::kToInteger:
    case Function::kConvertsToInteger:
    case Function::kToLong:
    case Function::kConvertsToLong:
      if (v.kind == ValueKind::kInteger)
        r = v, r->boolean = n->name.ends_with("Long");
      else if (v.kind == ValueKind::kBoolean)
        r = MakeInteger(v.boolean ? 1 : 0);
      else if (v.kind == ValueKind::kString && ParseNumberText(v.text, t, false))
        r = t;
      break;
    case Function::kToDecimal:
    case Function::kConvertsToDecimal:
      if (v.kind == ValueKind::kDecimal)
        r = v;
      else if (v.kind == ValueKind::kInteger)
        r = MakeDecimal(static_cast<double>(v.integer)), r->integer = 0;
      else if (v.kind == ValueKind::kBoolean)
        r = MakeDecimal(v.boolean ? 1 : 0), r->integer = 1;
      else if (v.kind == ValueKind::kString && ParseNumberText(v.text, t, true))
        r = t;
      break;
    case Function::kToString:
    case Function::kConvertsToString:
      switch (v.kind) {
        case ValueKind::kString:
          r = v;
          break;
        case ValueKind::kBoolean:
          r = MakeString(v.boolean ? "true" : "false");
          break;
        case ValueKind::kInteger:
          r = MakeString(Store(std::to_string(v.integer)));
          break;
        case ValueKind::kDecimal:
          r = MakeString(Store(FormatDecimal(v.decimal)));
          break;
        case ValueKind::kDate:
        case ValueKind::kDateTime:
        case ValueKind::kTime:
          r = MakeString(Store(FormatTemporal(v.kind, v.temporal)));
          break;
        case ValueKind::kQuantity:
          r = MakeString(Store(QuantityText(v)));
          break;
        default:
          break;
      }
      break;
    case Function::kToDate:
    case Function::kConvertsToDate:
      if (v.kind == ValueKind::kDate)
        r = v;
      else if (v.kind == ValueKind::kDateTime) {
        r = v;
        r->kind = ValueKind::kDate;
        r->temporal.precision = std::min(v.temporal.precision, Precision::kDay);
        r->temporal.has_tz = false;
      } else if (v.kind == ValueKind::kString) {
        t = Value();
        t.kind = ValueKind::kDate;
        if (ParseDate(v.text, t.temporal))
          r = t;
        else if (ParseDateTime(v.text, t.temporal)) {
          t.temporal.precision = std::min(t.temporal.precision, Precision::kDay);
          t.temporal.has_tz = false;
          r = t;
        }
      }
      break;
    case Function::kToDateTime:
    case Function::kConvertsToDateTime:
      if (v.kind == ValueKind::kDateTime)
        r = v;
      else if (v.kind == ValueKind::kDate)
        r = v, r->kind = ValueKind::kDateTime;
      else if (v.kind == ValueKind::kString) {
        t = Value();
        t.kind = ValueKind::kDateTime;
        if (ParseDateTime(v.text, t.temporal)) r = t;
      }
      break;
    case Function::kToTime:
    case Function::kConvertsToTime:
      if (v.kind == ValueKind::kTime)
        r = v;
      else if (v.kind == ValueKind::kString) {
        t = Value();
        t.kind = ValueKind::kTime;
        std::string_view s = v.text;
        if (s.starts_with("T")) s.remove_prefix(1);
        if (ParseTime(s, t.temporal)) r = t;
      }
      break;
    case Function::kToQuantity:
    case Function::kConvertsToQuantity: {
      if (v.kind == ValueKind::kQuantity)
        r = v;
      else if (v.kind == ValueKind::kInteger && v.boolean) {  // Long
      } else if (IsNumber(v)) {
        t = Value();
        t.kind = ValueKind::kQuantity;
        t.decimal = NumberOf(v);
        t.integer = v.kind == ValueKind::kInteger ? 0 : v.integer;
        t.boolean = true;
        t.unit = "1";
        r = t;
      } else if (v.kind == ValueKind::kBoolean) {
        t = Value();
        t.kind = ValueKind::kQuantity;
        t.decimal = v.boolean ? 1 : 0;
        t.boolean = true;
        t.unit = "1";
        r = t;
      } else if (v.kind == ValueKind::kString && ParseQuantityText(v.text, t)) {
        t.unit = Store(t.unit);
        r = t;
      }
      if (r && !n->args.empty()) {
        Temp u(*this);
        Eval(n->args[0], scope, *u);
        Value unit;
        if (u->size() != 1 || !ToSystem((*u)[0], unit) || unit.kind != ValueKind::kString)
          Fail("toQuantity() unit must be a String");
        std::string_view target = unit.text;
        std::string_view from_word = r->boolean ? std::string_view() : CalendarSingular(r->unit);
        std::string_view to_word = CalendarSingular(target);
        bool from_ym = from_word == "year" || from_word == "month";
        bool to_ym = to_word == "year" || to_word == "month";
        std::string_view from_ucum = r->boolean ? r->unit : CalendarToUcum(from_word);
        std::string_view to_ucum = to_word.empty() ? target : CalendarToUcum(to_word);
        std::optional<double> converted;
        if (from_ym == to_ym) {
          bool ucum_ym_to_word =
              r->boolean && (r->unit == "a" || r->unit == "mo") && !to_word.empty();
          if (!ucum_ym_to_word) converted = ConvertUnit(r->decimal, from_ucum, to_ucum);
        } else if (from_ym) {
          // A calendar year is 365 days and a month 30 days when turned into fixed durations.
          auto to = ParseUcum(to_ucum), seconds = ParseUcum("s");
          if (to && to->SameDimension(*seconds))
            converted = r->decimal * (from_word == "year" ? 31536000.0 : 2592000.0) / to->factor;
        }
        if (!converted) {
          r.reset();
        } else {
          r->decimal = *converted;
          r->integer = -1;
          r->boolean = to_word.empty();
          r->unit = Store(target);
        }
      }
      break;
    }
    default:
      break;
  }
  if (test)
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
