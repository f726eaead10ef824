// FHIRPath operators: equality and equivalence, ordering, boolean logic, membership, union and
// arithmetic over numbers, strings, Quantities and dates.
#include <cmath>
#include <cstdio>

#include "evaluator.h"
#include "quantity.h"
#include "temporal.h"

namespace topicbridge::fhirpath {

using simdjson::dom::element;
using simdjson::dom::element_type;

bool IsNumber(const Value& v) {
  return v.kind == ValueKind::kInteger || v.kind == ValueKind::kDecimal;
}
double NumberOf(const Value& v) {
  return v.kind == ValueKind::kInteger ? static_cast<double>(v.integer) : v.decimal;
}

namespace {

bool IsTemporal(ValueKind k) {
  return k == ValueKind::kDate || k == ValueKind::kDateTime || k == ValueKind::kTime;
}

bool JsonEqual(element a, element b) {
  element_type ta = a.type(), tb = b.type();
  bool na = ta == element_type::INT64 || ta == element_type::UINT64 || ta == element_type::DOUBLE;
  bool nb = tb == element_type::INT64 || tb == element_type::UINT64 || tb == element_type::DOUBLE;
  if (na && nb) {
    double x = 0, y = 0;
    IgnoreError(a.get(x));
    IgnoreError(b.get(y));
    return x == y;
  }
  if (ta != tb) return false;
  switch (ta) {
    case element_type::STRING:
      return a.get_string().value_unsafe() == b.get_string().value_unsafe();
    case element_type::BOOL:
      return a.get_bool().value_unsafe() == b.get_bool().value_unsafe();
    case element_type::NULL_VALUE:
      return true;
    case element_type::ARRAY: {
      auto x = a.get_array().value_unsafe(), y = b.get_array().value_unsafe();
      if (x.size() != y.size()) return false;
      auto it = y.begin();
      for (element e : x) {
        if (!JsonEqual(e, *it)) return false;
        ++it;
      }
      return true;
    }
    case element_type::OBJECT: {
      auto x = a.get_object().value_unsafe(), y = b.get_object().value_unsafe();
      if (x.size() != y.size()) return false;
      for (auto f : x) {
        element other;
        if (y.at_key(f.key).get(other) || !JsonEqual(f.value, other)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

int Scale(const Value& v) {
  if (v.kind == ValueKind::kInteger) return 0;
  return v.integer < 0 ? 15 : static_cast<int>(v.integer);
}

// Digits after the point in the shortest text of d (1.10 -> 1).
int ShortestScale(double d) {
  std::string s = FormatDecimal(d);
  int exponent = 0;
  std::size_t e = s.find('e');
  if (e != std::string::npos) {
    exponent = std::atoi(s.c_str() + e + 1);
    s.resize(e);
  }
  std::size_t dot = s.find('.');
  int decimals = dot == std::string::npos ? 0 : static_cast<int>(s.size() - dot - 1);
  return std::max(0, decimals - exponent);
}

double RoundTo(double x, int scale) {
  double f = std::pow(10.0, scale);
  return std::round(x * f) / f;
}

// Cleans binary floating-point noise from decimal arithmetic (0.1 + 0.2 -> 0.3).
double Clean(double d) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.15g", d);
  return std::strtod(buf, nullptr);
}

struct UnitView {
  std::string_view ucum;    // UCUM code
  bool word = false;        // written as a calendar keyword
  bool year_month = false;  // calendar year or month keyword: not a fixed duration
  bool ucum_year_month = false;
};

UnitView ViewUnit(const Value& q) {
  UnitView u;
  if (!q.boolean) {
    std::string_view s = CalendarSingular(q.unit);
    u.word = !s.empty();
    u.ucum = u.word ? CalendarToUcum(s) : q.unit;
    u.year_month = s == "year" || s == "month";
  } else {
    u.ucum = q.unit.empty() ? std::string_view("1") : q.unit;
  }
  u.ucum_year_month = !u.word && (u.ucum == "a" || u.ucum == "mo");
  return u;
}

struct Aligned {
  double a, b;
  int scale_a, scale_b;
};

// Both quantities in one unit (the finer one), or nullopt when they do not compare.
std::optional<Aligned> AlignQuantities(const Value& x, const Value& y, bool equivalence) {
  UnitView ux = ViewUnit(x), uy = ViewUnit(y);
  if (ux.word && uy.word) {
    // Calendar durations among themselves: a year is 12 months, a month 30 days.
    auto seconds = [](const UnitView& u, double v) {
      if (u.ucum == "a") return v * 12 * 30 * 86400;
      if (u.ucum == "mo") return v * 30 * 86400;
      return v * ParseUcum(u.ucum)->factor;
    };
    if (ux.year_month && uy.year_month) {
      double a = ux.ucum == "a" ? x.decimal * 12 : x.decimal,
             b = uy.ucum == "a" ? y.decimal * 12 : y.decimal;
      return Aligned{a, b, Scale(x), Scale(y)};
    }
    return Aligned{seconds(ux, x.decimal), seconds(uy, y.decimal), 15, 15};
  }
  if (!equivalence) {
    if (ux.year_month != uy.year_month) return std::nullopt;
    if ((ux.ucum_year_month && uy.word) || (uy.ucum_year_month && ux.word)) return std::nullopt;
  }
  auto cx = ParseUcum(ux.ucum), cy = ParseUcum(uy.ucum);
  if (ux.ucum == uy.ucum) return Aligned{x.decimal, y.decimal, Scale(x), Scale(y)};
  if (!cx || !cy || !cx->SameDimension(*cy)) return std::nullopt;
  bool convert_y = cx->factor <= cy->factor;  // convert into the finer unit
  const Value& from = convert_y ? y : x;
  std::string_view from_unit = convert_y ? uy.ucum : ux.ucum,
                   to_unit = convert_y ? ux.ucum : uy.ucum;
  auto converted = ConvertUnit(from.decimal, from_unit, to_unit);
  if (!converted) return std::nullopt;
  double ratio = convert_y ? cy->factor / cx->factor : cx->factor / cy->factor;
  int scale = std::max(0, Scale(from) - static_cast<int>(std::floor(std::log10(ratio) + 1e-9)));
  if (convert_y) return Aligned{x.decimal, *converted, Scale(x), scale};
  return Aligned{*converted, y.decimal, scale, Scale(y)};
}

Value QuantityFromNumber(const Value& n) {
  Value q;
  q.kind = ValueKind::kQuantity;
  q.decimal = NumberOf(n);
  q.integer = Scale(n);
  q.boolean = true;
  q.unit = "1";
  return q;
}

std::optional<int> CompareNumbers(double a, double b) { return a < b ? -1 : a > b ? 1 : 0; }

}  // namespace

std::optional<bool> EvaluatorState::Equal(const Value& a, const Value& b) {
  if (a.kind == ValueKind::kNode && b.kind == ValueKind::kNode) {
    if (a.has_element && b.has_element && a.element.is_object() && b.element.is_object())
      return JsonEqual(a.element, b.element);
    // Primitives: equal values with different extensions are different elements.
    if (a.has_extension != b.has_extension) return false;
    if (a.has_extension && !JsonEqual(a.extension, b.extension)) return false;
    if (!a.has_element && !b.has_element) return true;
  }
  Value x, y;
  bool hx = ToSystem(a, x), hy = ToSystem(b, y);
  if (!hx || !hy) return false;
  if ((x.kind == ValueKind::kString && IsTemporal(y.kind)) ||
      (y.kind == ValueKind::kString && IsTemporal(x.kind))) {
    Value probe;
    std::string_view s = x.kind == ValueKind::kString ? x.text : y.text;
    if (!ParseTemporalLiteral(s, probe) && !ParseTemporalLiteral("T" + std::string(s), probe))
      return false;
  }
  if (IsNumber(x) && IsNumber(y)) {
    if (x.kind == ValueKind::kInteger && y.kind == ValueKind::kInteger)
      return x.integer == y.integer;
    return Clean(NumberOf(x)) == Clean(NumberOf(y));
  }
  if (x.kind == ValueKind::kString && y.kind == ValueKind::kString) return x.text == y.text;
  if (x.kind == ValueKind::kBoolean && y.kind == ValueKind::kBoolean) return x.boolean == y.boolean;
  if (x.kind == ValueKind::kQuantity && IsNumber(y)) y = QuantityFromNumber(y);
  if (y.kind == ValueKind::kQuantity && IsNumber(x)) x = QuantityFromNumber(x);
  auto c = CompareSystem(x, y);
  if (c) return *c == 0;
  if (x.kind == y.kind || (IsTemporal(x.kind) && IsTemporal(y.kind)) ||
      (x.kind == ValueKind::kString && IsTemporal(y.kind)) ||
      (y.kind == ValueKind::kString && IsTemporal(x.kind)))
    return std::nullopt;
  return false;
}

bool EvaluatorState::JsonEquivalent(simdjson::dom::element a, simdjson::dom::element b) {
  if (a.is_object() && b.is_object()) {
    auto x = a.get_object().value_unsafe(), y = b.get_object().value_unsafe();
    if (x.size() != y.size()) return false;
    for (auto f : x) {
      element other;
      if (y.at_key(f.key).get(other) || !JsonEquivalent(f.value, other)) return false;
    }
    return true;
  }
  if (a.is_array() && b.is_array()) {
    auto x = a.get_array().value_unsafe(), y = b.get_array().value_unsafe();
    if (x.size() != y.size()) return false;
    auto it = y.begin();
    for (element e : x) {
      if (!JsonEquivalent(e, *it)) return false;
      ++it;
    }
    return true;
  }
  if (a.is_object() || b.is_object() || a.is_array() || b.is_array()) return false;
  return Equivalent(MakeNode(a, -1, -1), MakeNode(b, -1, -1));
}

bool EvaluatorState::Equivalent(const Value& a, const Value& b) {
  if (a.kind == ValueKind::kNode && b.kind == ValueKind::kNode) {
    if (a.has_element && b.has_element && a.element.is_object() && b.element.is_object())
      return JsonEquivalent(a.element, b.element);
    if (!a.has_element && !b.has_element) return true;
  }
  Value x, y;
  if (!ToSystem(a, x) || !ToSystem(b, y)) return false;
  if (IsNumber(x) && IsNumber(y)) {
    int s = std::min(ShortestScale(NumberOf(x)), ShortestScale(NumberOf(y)));
    return RoundTo(NumberOf(x), s) == RoundTo(NumberOf(y), s);
  }
  if (x.kind == ValueKind::kString && y.kind == ValueKind::kString) {
    auto norm = [](std::string_view s) {
      std::string out;
      for (std::size_t i = 0; i < s.size(); ++i) {
        char c = s[i];
        if (c == '\t' || c == '\n' || c == '\r') {
          out += ' ';
        } else if (static_cast<unsigned char>(c) == 0xC2 && i + 1 < s.size() &&
                   static_cast<unsigned char>(s[i + 1]) == 0xA0) {
          out += ' ';  // no-break space
          ++i;
        } else {
          out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
      }
      return out;
    };
    return norm(x.text) == norm(y.text);
  }
  if (x.kind == ValueKind::kQuantity && IsNumber(y)) y = QuantityFromNumber(y);
  if (y.kind == ValueKind::kQuantity && IsNumber(x)) x = QuantityFromNumber(x);
  if (x.kind == ValueKind::kQuantity && y.kind == ValueKind::kQuantity) {
    auto al = AlignQuantities(x, y, true);
    if (!al) return false;
    int s = std::min(al->scale_a, al->scale_b);
    return RoundTo(al->a, s) == RoundTo(al->b, s);
  }
  if (IsTemporal(x.kind) && IsTemporal(y.kind)) {
    auto c = CompareTemporal(x.kind == ValueKind::kTime ? x.kind : ValueKind::kDateTime, x.temporal,
                             y.temporal);
    return c && *c == 0;
  }
  auto eq = Equal(x, y);
  return eq && *eq;
}

bool EvaluatorState::QuantitiesComparable(const Value& a, const Value& b) const {
  Value x = IsNumber(a) ? QuantityFromNumber(a) : a, y = IsNumber(b) ? QuantityFromNumber(b) : b;
  if (x.kind != ValueKind::kQuantity || y.kind != ValueKind::kQuantity) return false;
  UnitView ux = ViewUnit(x), uy = ViewUnit(y);
  if (ux.ucum == uy.ucum) return true;
  bool ym_x = ux.year_month || ux.ucum_year_month, ym_y = uy.year_month || uy.ucum_year_month;
  if (ux.word != uy.word) {
    if (ym_x && ym_y) return true;
    if (ym_x || ym_y) return false;
  }
  auto cx = ParseUcum(ux.ucum), cy = ParseUcum(uy.ucum);
  return cx && cy && cx->SameDimension(*cy);
}

std::optional<int> EvaluatorState::Compare(const Value& a, const Value& b) {
  if (a.kind != ValueKind::kNode && b.kind != ValueKind::kNode) return CompareSystem(a, b);
  Value x, y;
  if (!ToSystem(a, x) || !ToSystem(b, y)) return std::nullopt;
  return CompareSystem(x, y);
}

std::optional<int> EvaluatorState::CompareSystem(Value x, Value y) {
  if (IsNumber(x) && IsNumber(y)) {
    if (x.kind == ValueKind::kInteger && y.kind == ValueKind::kInteger)
      return x.integer < y.integer ? -1 : x.integer > y.integer ? 1 : 0;
    return CompareNumbers(Clean(NumberOf(x)), Clean(NumberOf(y)));
  }
  if (x.kind == ValueKind::kString && y.kind == ValueKind::kString) {
    int c = x.text.compare(y.text);
    return c < 0 ? -1 : c > 0 ? 1 : 0;
  }
  if (x.kind == ValueKind::kBoolean && y.kind == ValueKind::kBoolean)
    return int(x.boolean) - int(y.boolean);
  // A string meets a date/time: read it as one.
  if (x.kind == ValueKind::kString && IsTemporal(y.kind)) {
    Value t;
    if (!ParseTemporalLiteral(
            y.kind == ValueKind::kTime ? "T" + std::string(x.text) : std::string(x.text), t))
      return std::nullopt;
    x = t;
  } else if (y.kind == ValueKind::kString && IsTemporal(x.kind)) {
    Value t;
    if (!ParseTemporalLiteral(
            x.kind == ValueKind::kTime ? "T" + std::string(y.text) : std::string(y.text), t))
      return std::nullopt;
    y = t;
  }
  if (IsTemporal(x.kind) && IsTemporal(y.kind)) {
    if ((x.kind == ValueKind::kTime) != (y.kind == ValueKind::kTime)) return std::nullopt;
    return CompareTemporal(x.kind == ValueKind::kTime ? x.kind : ValueKind::kDateTime, x.temporal,
                           y.temporal);
  }
  if (x.kind == ValueKind::kQuantity && IsNumber(y)) y = QuantityFromNumber(y);
  if (y.kind == ValueKind::kQuantity && IsNumber(x)) x = QuantityFromNumber(x);
  if (x.kind == ValueKind::kQuantity && y.kind == ValueKind::kQuantity) {
    auto al = AlignQuantities(x, y, false);
    if (!al) return std::nullopt;
    return CompareNumbers(Clean(al->a), Clean(al->b));
  }
  return std::nullopt;
}

std::optional<bool> EvaluatorState::CollectionsEqual(const Collection& a, const Collection& b) {
  if (a.empty() || b.empty()) return std::nullopt;
  if (a.size() != b.size()) return false;
  bool unknown = false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    auto e = Equal(a[i], b[i]);
    if (!e)
      unknown = true;
    else if (!*e)
      return false;
  }
  if (unknown) return std::nullopt;
  return true;
}

bool EvaluatorState::CollectionsEquivalent(const Collection& a, const Collection& b) {
  if (a.size() != b.size()) return false;
  for (const Value& x : a) {
    bool found = false;
    for (const Value& y : b) {
      if (Equivalent(x, y)) {
        found = true;
        break;
      }
    }
    if (!found) return false;
  }
  return true;
}

bool EvaluatorState::Contains(const Collection& c, const Value& v) {
  for (const Value& x : c) {
    auto e = Equal(x, v);
    if (e && *e) return true;
  }
  return false;
}

std::optional<bool> EvaluatorState::AsBoolean(const Collection& c, std::string_view what,
                                              bool strict) {
  if (c.empty()) return std::nullopt;
  if (c.size() > 1)
    Fail(std::string(what) + " requires a single Boolean, got " + std::to_string(c.size()) +
         " items");
  Value v;
  if (ToSystem(c[0], v) && v.kind == ValueKind::kBoolean) return v.boolean;
  if (strict) return std::nullopt;
  return true;
}

bool EvaluatorState::CriteriaTrue(const Collection& c) {
  if (c.empty()) return false;
  Value v;
  if (c.size() == 1 && ToSystem(c[0], v) && v.kind == ValueKind::kBoolean) return v.boolean;
  return true;
}

std::string FormatDecimal(double d) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.15g", d);
  double back = std::strtod(buf, nullptr);
  if (back != d) std::snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

void EvaluatorState::Arithmetic(BinaryOp op, const Value& a, const Value& b, Collection& out) {
  Value x, y;
  if (!ToSystem(a, x) || !ToSystem(b, y)) Fail("arithmetic on a value-less element");
  if (op == BinaryOp::kConcat ||
      (op == BinaryOp::kPlus && x.kind == ValueKind::kString && y.kind == ValueKind::kString)) {
    if (x.kind != ValueKind::kString || y.kind != ValueKind::kString) Fail("'&' requires strings");
    std::string s(x.text);
    s += y.text;
    out.push_back(MakeString(Store(s)));
    return;
  }
  if (IsNumber(x) && IsNumber(y)) return NumberArithmetic(op, x, y, out);
  // A duration may come first in an addition to a date/time.
  if (op == BinaryOp::kPlus && x.kind == ValueKind::kQuantity && IsTemporal(y.kind))
    std::swap(x, y);
  if (IsTemporal(x.kind) && y.kind == ValueKind::kQuantity &&
      (op == BinaryOp::kPlus || op == BinaryOp::kMinus))
    return TemporalArithmetic(op, x, y, out);
  if (x.kind == ValueKind::kQuantity || y.kind == ValueKind::kQuantity)
    return QuantityArithmetic(op, x, y, out);
  Fail("operator not defined for these operand types");
}

void EvaluatorState::NumberArithmetic(BinaryOp op, const Value& x, const Value& y,
                                      Collection& out) {
  const bool ints = x.kind == ValueKind::kInteger && y.kind == ValueKind::kInteger;
  const bool is_long = x.boolean || y.boolean;  // Integer's flag: a Long operand
  const double p = NumberOf(x), q = NumberOf(y);
  auto push_integer = [&](std::int64_t i) {
    out.push_back(MakeInteger(i));
    out.back().boolean = is_long;
  };
  switch (op) {
    case BinaryOp::kPlus:
    case BinaryOp::kMinus:
    case BinaryOp::kTimes: {
      if (ints) {
        std::int64_t r = 0;
        bool overflow = op == BinaryOp::kPlus    ? __builtin_add_overflow(x.integer, y.integer, &r)
                        : op == BinaryOp::kMinus ? __builtin_sub_overflow(x.integer, y.integer, &r)
                                                 : __builtin_mul_overflow(x.integer, y.integer, &r);
        if (!overflow) push_integer(r);
        return;
      }
      double r = op == BinaryOp::kPlus ? p + q : op == BinaryOp::kMinus ? p - q : p * q;
      Value v = MakeDecimal(Clean(r));
      v.integer = op == BinaryOp::kTimes ? Scale(x) + Scale(y) : std::max(Scale(x), Scale(y));
      out.push_back(v);
      return;
    }
    case BinaryOp::kDivide:
      if (q != 0) out.push_back(MakeDecimal(p / q));
      return;
    case BinaryOp::kDiv:
      if (q == 0) return;
      if (ints)
        push_integer(x.integer / y.integer);
      else
        out.push_back(MakeInteger(static_cast<std::int64_t>(std::trunc(p / q))));
      return;
    case BinaryOp::kMod:
      if (q == 0) return;
      if (ints)
        push_integer(x.integer % y.integer);
      else
        out.push_back(MakeDecimal(Clean(std::fmod(p, q))));
      return;
    default:
      Fail("operator not defined for numbers");
  }
}

void EvaluatorState::TemporalArithmetic(BinaryOp op, const Value& x, const Value& y,
                                        Collection& out) {
  std::string_view unit = y.boolean ? UcumToCalendar(y.unit) : CalendarSingular(y.unit);
  // UCUM years and months are not calendar durations: 'a' is 365.25 days.
  if (unit.empty() || (y.boolean && (unit == "year" || unit == "month")))
    Fail("cannot add a Quantity in '" + std::string(y.unit) + "' to a date/time");
  if (x.kind == ValueKind::kTime &&
      (unit == "year" || unit == "month" || unit == "week" || unit == "day"))
    Fail("cannot add '" + std::string(y.unit) + "' to a time");
  Value r = x;
  double amount = op == BinaryOp::kMinus ? -y.decimal : y.decimal;
  if (!AddToTemporal(x.kind, r.temporal, amount, unit)) Fail("invalid date/time arithmetic");
  out.push_back(r);
}

void EvaluatorState::QuantityArithmetic(BinaryOp op, Value x, Value y, Collection& out) {
  for (const Value* v : {&x, &y}) {
    if (v->kind == ValueKind::kQuantity && v->boolean && !ParseUcum(v->unit)) return;  // not UCUM
  }
  // div and mod are defined on dimensionless quantities only.
  if (op == BinaryOp::kDiv || op == BinaryOp::kMod) {
    auto plain = [](const Value& v) {
      return IsNumber(v) ? v : v.unit == "1" ? MakeDecimal(v.decimal) : Value();
    };
    Value lhs = plain(x), rhs = plain(y);
    if (!IsNumber(lhs) || !IsNumber(rhs)) return;
    Temp r(*this);
    NumberArithmetic(op, lhs, rhs, *r);
    if (!r->empty()) out.push_back(QuantityFromNumber((*r)[0]));
    return;
  }
  if (IsNumber(x) && op == BinaryOp::kTimes) std::swap(x, y);
  if (IsNumber(y) && (op == BinaryOp::kTimes || op == BinaryOp::kDivide)) {
    if (op == BinaryOp::kDivide && NumberOf(y) == 0) return;
    Value r = x;
    r.decimal = Clean(op == BinaryOp::kTimes ? x.decimal * NumberOf(y) : x.decimal / NumberOf(y));
    out.push_back(r);
    return;
  }
  if (IsNumber(x)) x = QuantityFromNumber(x);
  if (IsNumber(y)) y = QuantityFromNumber(y);
  if (x.kind != ValueKind::kQuantity || y.kind != ValueKind::kQuantity)
    Fail("invalid Quantity arithmetic");
  if (op == BinaryOp::kPlus || op == BinaryOp::kMinus) return QuantitySum(op, x, y, out);
  if (op == BinaryOp::kTimes || op == BinaryOp::kDivide) return QuantityProduct(op, x, y, out);
  Fail("invalid Quantity arithmetic");
}

void EvaluatorState::QuantitySum(BinaryOp op, const Value& x, const Value& y, Collection& out) {
  UnitView ux = ViewUnit(x), uy = ViewUnit(y);
  auto cx = ParseUcum(ux.ucum), cy = ParseUcum(uy.ucum);
  if (!cx || !cy || !cx->SameDimension(*cy)) return;
  bool ym = ux.year_month || ux.ucum_year_month || uy.year_month || uy.ucum_year_month;
  if (ux.word != uy.word && ym) return;
  // The result is in the finer unit of the two.
  bool into_x = ux.word && uy.word && ux.year_month && uy.year_month
                    ? ux.ucum == "mo" || uy.ucum == "a"
                    : cx->factor <= cy->factor;
  const Value& target = into_x ? x : y;
  std::string_view to = into_x ? ux.ucum : uy.ucum;
  auto lhs = ConvertUnit(x.decimal, ux.ucum, to), rhs = ConvertUnit(y.decimal, uy.ucum, to);
  if (!lhs || !rhs) return;
  Value r = target;
  r.decimal = Clean(op == BinaryOp::kPlus ? *lhs + *rhs : *lhs - *rhs);
  r.integer = std::max(Scale(x), Scale(y));
  if (!r.boolean) r.unit = Store(std::string(CalendarSingular(target.unit)) + "s");
  out.push_back(r);
}

void EvaluatorState::QuantityProduct(BinaryOp op, const Value& x, const Value& y, Collection& out) {
  UnitView ux = ViewUnit(x), uy = ViewUnit(y);
  if (ux.word || uy.word) return;  // calendar durations do not multiply
  if (op == BinaryOp::kDivide && y.decimal == 0) return;
  Value r;
  r.kind = ValueKind::kQuantity;
  r.boolean = true;
  r.integer = -1;
  if (op == BinaryOp::kDivide) {
    if (auto same = ConvertUnit(y.decimal, uy.ucum, ux.ucum)) {  // same dimension: a ratio
      r.decimal = Clean(x.decimal / *same);
      r.unit = "1";
      out.push_back(r);
      return;
    }
  }
  r.decimal = Clean(op == BinaryOp::kTimes ? x.decimal * y.decimal : x.decimal / y.decimal);
  std::string unit;
  if (uy.ucum == "1")
    unit = std::string(ux.ucum);
  else if (ux.ucum == "1" && op == BinaryOp::kTimes)
    unit = std::string(uy.ucum);
  else
    unit = std::string(ux.ucum) + (op == BinaryOp::kTimes ? "." : "/") + std::string(uy.ucum);
  r.unit = Store(unit);
  out.push_back(r);
}

void EvaluatorState::Binary(const AstNode* n, const Scope& scope, Collection& out) {
  Temp left(*this), right(*this);
  Eval(n->receiver, scope, *left);
  Eval(n->args[0], scope, *right);
  Collection& l = *left;
  Collection& r = *right;
  switch (n->op) {
    case BinaryOp::kAnd:
    case BinaryOp::kOr:
    case BinaryOp::kXor:
    case BinaryOp::kImplies:
      return BooleanOperator(n->op, l, r, out);
    case BinaryOp::kUnion: {
      Temp merged(*this);
      for (Collection* c : {&l, &r}) {
        for (const Value& v : *c) {
          if (!Contains(*merged, v)) merged->push_back(v);
        }
      }
      out.insert(out.end(), merged->begin(), merged->end());
      return;
    }
    case BinaryOp::kIn:
    case BinaryOp::kContains: {
      Collection& item = n->op == BinaryOp::kIn ? l : r;
      Collection& set = n->op == BinaryOp::kIn ? r : l;
      if (item.empty()) return;
      if (item.size() > 1) Fail("membership operator requires a single item");
      out.push_back(MakeBoolean(Contains(set, item[0])));
      return;
    }
    case BinaryOp::kEqual:
    case BinaryOp::kNotEqual: {
      auto e = CollectionsEqual(l, r);
      if (e) out.push_back(MakeBoolean(n->op == BinaryOp::kEqual ? *e : !*e));
      return;
    }
    case BinaryOp::kEquivalent:
    case BinaryOp::kNotEquivalent: {
      bool e = CollectionsEquivalent(l, r);
      out.push_back(MakeBoolean(n->op == BinaryOp::kEquivalent ? e : !e));
      return;
    }
    case BinaryOp::kLess:
    case BinaryOp::kGreater:
    case BinaryOp::kLessOrEqual:
    case BinaryOp::kGreaterOrEqual:
      return Comparison(n->op, l, r, out);
    case BinaryOp::kConcat:
      if (l.size() > 1 || r.size() > 1) Fail("'&' requires single items");
      {
        Value e = MakeString("");
        auto operand = [&](const Collection& c) -> const Value& {
          return c.empty() || (c[0].kind == ValueKind::kNode && !c[0].has_element) ? e : c[0];
        };
        Arithmetic(BinaryOp::kConcat, operand(l), operand(r), out);
      }
      return;
    default:
      if (l.empty() || r.empty()) return;
      if (l.size() > 1 || r.size() > 1) Fail("arithmetic requires single items");
      if ((l[0].kind == ValueKind::kNode && !l[0].has_element) ||
          (r[0].kind == ValueKind::kNode && !r[0].has_element))
        return;
      Arithmetic(n->op, l[0], r[0], out);
      return;
  }
}

// Three-valued logic; an operand that is not a single Boolean counts as empty.
void EvaluatorState::BooleanOperator(BinaryOp op, const Collection& l, const Collection& r,
                                     Collection& out) {
  switch (op) {
    case BinaryOp::kAnd: {
      auto a = AsBoolean(l, "'and'", true), b = AsBoolean(r, "'and'", true);
      if ((a && !*a) || (b && !*b))
        out.push_back(MakeBoolean(false));
      else if (a && b)
        out.push_back(MakeBoolean(true));
      return;
    }
    case BinaryOp::kOr: {
      auto a = AsBoolean(l, "'or'", true), b = AsBoolean(r, "'or'", true);
      if ((a && *a) || (b && *b))
        out.push_back(MakeBoolean(true));
      else if (a && b)
        out.push_back(MakeBoolean(false));
      return;
    }
    case BinaryOp::kXor: {
      auto a = AsBoolean(l, "'xor'", true), b = AsBoolean(r, "'xor'", true);
      if (a && b) out.push_back(MakeBoolean(*a != *b));
      return;
    }
    case BinaryOp::kImplies: {
      auto a = AsBoolean(l, "'implies'", true), b = AsBoolean(r, "'implies'", true);
      if (a && !*a)
        out.push_back(MakeBoolean(true));
      else if (b && *b)
        out.push_back(MakeBoolean(true));
      else if (a && b)
        out.push_back(MakeBoolean(false));
      return;
    }
    default:
      return;
  }
}

void EvaluatorState::Comparison(BinaryOp op, const Collection& l, const Collection& r,
                                Collection& out) {
  if (l.empty() || r.empty()) return;
  if (l.size() > 1 || r.size() > 1) Fail("comparison requires single items");
  Value x, y;
  if (!ToSystem(l[0], x) || !ToSystem(r[0], y)) return;
  auto c = Compare(x, y);
  if (!c) {
    bool comparable = (IsNumber(x) && IsNumber(y)) || x.kind == y.kind ||
                      (IsTemporal(x.kind) && IsTemporal(y.kind)) ||
                      (x.kind == ValueKind::kString && IsTemporal(y.kind)) ||
                      (y.kind == ValueKind::kString && IsTemporal(x.kind)) ||
                      (x.kind == ValueKind::kQuantity && IsNumber(y)) ||
                      (y.kind == ValueKind::kQuantity && IsNumber(x));
    if (!comparable) Fail("cannot compare these types");
    bool time_x = x.kind == ValueKind::kTime, time_y = y.kind == ValueKind::kTime;
    if (IsTemporal(x.kind) && IsTemporal(y.kind) && time_x != time_y)
      Fail("cannot compare a time with a date");
    if ((x.kind == ValueKind::kString && IsTemporal(y.kind)) ||
        (y.kind == ValueKind::kString && IsTemporal(x.kind)))
      Fail("cannot compare a String with a date/time");
    return;
  }
  bool result = op == BinaryOp::kLess          ? *c < 0
                : op == BinaryOp::kGreater     ? *c > 0
                : op == BinaryOp::kLessOrEqual ? *c <= 0
                                               : *c >= 0;
  out.push_back(MakeBoolean(result));
}

}  // namespace topicbridge::fhirpath
