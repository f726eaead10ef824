#include "quantity.h"

#include <cmath>
#include <cstdlib>

namespace topicbridge::fhirpath {
namespace {

struct Atom {
  std::string_view code;
  double factor;
  double offset;
  signed char dims[6];
  bool prefixable;
};

// dims: m g s K mol (unused slot)
constexpr Atom kAtoms[] = {
    {"m", 1, 0, {1, 0, 0, 0, 0, 0}, true},
    {"g", 1, 0, {0, 1, 0, 0, 0, 0}, true},
    {"s", 1, 0, {0, 0, 1, 0, 0, 0}, true},
    {"min", 60, 0, {0, 0, 1, 0, 0, 0}, false},
    {"h", 3600, 0, {0, 0, 1, 0, 0, 0}, false},
    {"d", 86400, 0, {0, 0, 1, 0, 0, 0}, false},
    {"wk", 604800, 0, {0, 0, 1, 0, 0, 0}, false},
    {"mo", 2629800, 0, {0, 0, 1, 0, 0, 0}, false},
    {"a", 31557600, 0, {0, 0, 1, 0, 0, 0}, false},
    {"L", 0.001, 0, {3, 0, 0, 0, 0, 0}, true},
    {"l", 0.001, 0, {3, 0, 0, 0, 0, 0}, true},
    {"K", 1, 0, {0, 0, 0, 1, 0, 0}, false},
    {"Cel", 1, 273.15, {0, 0, 0, 1, 0, 0}, false},
    {"[degF]", 5.0 / 9.0, 459.67 * 5.0 / 9.0, {0, 0, 0, 1, 0, 0}, false},
    {"mol", 1, 0, {0, 0, 0, 0, 1, 0}, true},
    {"1", 1, 0, {0, 0, 0, 0, 0, 0}, false},
    {"%", 0.01, 0, {0, 0, 0, 0, 0, 0}, false},
    {"[lb_av]", 453.59237, 0, {0, 1, 0, 0, 0, 0}, false},
    {"[oz_av]", 28.349523125, 0, {0, 1, 0, 0, 0, 0}, false},
    {"[in_i]", 0.0254, 0, {1, 0, 0, 0, 0, 0}, false},
    {"[ft_i]", 0.3048, 0, {1, 0, 0, 0, 0, 0}, false},
    {"[mi_i]", 1609.344, 0, {1, 0, 0, 0, 0, 0}, false},
    {"mm[Hg]", 133322.387415, 0, {-1, 1, -2, 0, 0, 0}, false},
    {"[iU]", 1, 0, {0, 0, 0, 0, 0, 1}, true},
    {"[IU]", 1, 0, {0, 0, 0, 0, 0, 1}, true},
};

struct Prefix {
  char code;
  double factor;
};
constexpr Prefix kPrefixes[] = {{'k', 1e3},  {'h', 1e2},  {'d', 1e-1},  {'c', 1e-2}, {'m', 1e-3},
                                {'u', 1e-6}, {'n', 1e-9}, {'p', 1e-12}, {'M', 1e6},  {'G', 1e9}};

const Atom* FindAtom(std::string_view s) {
  for (const auto& a : kAtoms) {
    if (a.code == s) return &a;
  }
  return nullptr;
}

// One term like "kg", "s2", "m-1", "10*3" (not supported), with exponent.
bool ParseTerm(std::string_view term, CanonicalUnit& out, int sign) {
  std::size_t e = term.size();
  while (e > 0 && (std::isdigit(static_cast<unsigned char>(term[e - 1])) || term[e - 1] == '-'))
    --e;
  int exponent = 1;
  if (e < term.size() && e > 0) exponent = std::atoi(std::string(term.substr(e)).c_str());
  std::string_view base = e > 0 ? term.substr(0, e) : term;
  if (e == 0) exponent = 1;
  double factor = 1;
  const Atom* atom = FindAtom(base);
  if (!atom && base.size() > 1) {
    for (const auto& p : kPrefixes) {
      if (base[0] != p.code) continue;
      const Atom* a = FindAtom(base.substr(1));
      if (a && a->prefixable) {
        atom = a;
        factor = p.factor;
        break;
      }
    }
  }
  if (!atom) return false;
  int power = exponent * sign;
  out.factor *= std::pow(factor * atom->factor, power);
  if (atom->offset != 0) out.offset = atom->offset;
  for (int i = 0; i < 6; ++i)
    out.dims[i] = static_cast<signed char>(out.dims[i] + atom->dims[i] * power);
  return true;
}

}  // namespace

bool CanonicalUnit::SameDimension(const CanonicalUnit& o) const {
  for (int i = 0; i < 6; ++i) {
    if (dims[i] != o.dims[i]) return false;
  }
  return true;
}

std::optional<CanonicalUnit> ParseUcum(std::string_view code) {
  CanonicalUnit u;
  if (code.empty()) return u;
  if (const Atom* a = FindAtom(code)) {
    u.factor = a->factor;
    u.offset = a->offset;
    for (int i = 0; i < 6; ++i) u.dims[i] = a->dims[i];
    return u;
  }
  int sign = 1;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= code.size(); ++i) {
    if (i < code.size() && code[i] == '[') {
      i = code.find(']', i);
      if (i == std::string_view::npos) return std::nullopt;
      continue;
    }
    if (i == code.size() || code[i] == '.' || code[i] == '/') {
      if (i == start || !ParseTerm(code.substr(start, i - start), u, sign)) return std::nullopt;
      if (i < code.size() && code[i] == '/') sign = -1;
      start = i + 1;
    }
  }
  return u;
}

std::string_view CalendarSingular(std::string_view w) {
  static constexpr std::string_view kWords[] = {"year", "month",  "week",   "day",
                                                "hour", "minute", "second", "millisecond"};
  for (auto k : kWords) {
    if (w == k || (w.size() == k.size() + 1 && w.starts_with(k) && w.back() == 's')) return k;
  }
  return {};
}

std::string_view CalendarToUcum(std::string_view s) {
  if (s == "year") return "a";
  if (s == "month") return "mo";
  if (s == "week") return "wk";
  if (s == "day") return "d";
  if (s == "hour") return "h";
  if (s == "minute") return "min";
  if (s == "second") return "s";
  if (s == "millisecond") return "ms";
  return {};
}

std::string_view UcumToCalendar(std::string_view c) {
  if (c == "a") return "year";
  if (c == "mo") return "month";
  if (c == "wk") return "week";
  if (c == "d") return "day";
  if (c == "h") return "hour";
  if (c == "min") return "minute";
  if (c == "s") return "second";
  if (c == "ms") return "millisecond";
  return {};
}

std::optional<double> ConvertUnit(double value, std::string_view from, std::string_view to) {
  if (from == to) return value;
  auto a = ParseUcum(from), b = ParseUcum(to);
  if (!a || !b || !a->SameDimension(*b)) return std::nullopt;
  double base = value * a->factor + a->offset;
  return (base - b->offset) / b->factor;
}

}  // namespace topicbridge::fhirpath
