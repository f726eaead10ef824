// The FHIRPath function library (existence, filtering, subsetting, combining, conversion,
// strings, math, tree navigation, utility, aggregates, types, FHIR extensions and resolve()).
#include "functions.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <regex>

#include "evaluator.h"
#include "quantity.h"
#include "temporal.h"

namespace topicbridge::fhirpath {

namespace {
constexpr FunctionInfo kFunctions[] = {
#define X(id, name, min, max, kind) {Function::k##id, name, min, max, kind},
    TOPICBRIDGE_FHIRPATH_FUNCTIONS(X)
#undef X
};
}  // namespace

const FunctionInfo* FindFunction(std::string_view name) {
  for (const auto& f : kFunctions) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

namespace {

using Temp = EvaluatorState::Temp;

constexpr std::size_t kMaxRegexInput = 4096;
constexpr std::size_t kMaxRepeatItems = 10000;

// FHIRPath regexes run in single-line mode: '.' also matches line breaks.
std::string DotMatchesAll(std::string_view p) {
  std::string out;
  bool in_class = false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      out += c;
      out += p[++i];
      continue;
    }
    if (c == '[') in_class = true;
    if (c == ']') in_class = false;
    if (c == '.' && !in_class)
      out += "[\\s\\S]";
    else
      out += c;
  }
  return out;
}

std::string Base64Encode(std::string_view in, bool url) {
  const char* a = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                      : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    unsigned v =
        (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8 | (unsigned char)in[i + 2];
    out += a[v >> 18], out += a[(v >> 12) & 63], out += a[(v >> 6) & 63], out += a[v & 63];
  }
  if (i + 1 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16;
    out += a[v >> 18], out += a[(v >> 12) & 63], out += "==";
  } else if (i + 2 == in.size()) {
    unsigned v = (unsigned char)in[i] << 16 | (unsigned char)in[i + 1] << 8;
    out += a[v >> 18], out += a[(v >> 12) & 63], out += a[(v >> 6) & 63], out += '=';
  }
  return out;
}

std::string Base64Decode(std::string_view in) {
  std::string out;
  unsigned v = 0;
  int bits = 0;
  for (char c : in) {
    int d;
    if (c >= 'A' && c <= 'Z')
      d = c - 'A';
    else if (c >= 'a' && c <= 'z')
      d = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      d = c - '0' + 52;
    else if (c == '+' || c == '-')
      d = 62;
    else if (c == '/' || c == '_')
      d = 63;
    else
      continue;
    v = (v << 6) | d;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((v >> bits) & 0xFF);
    }
  }
  return out;
}

}  // namespace

void EvaluatorState::Call(const AstNode* n, const Scope& scope, Collection& out) {
  Temp input(*this);
  if (n->receiver) Eval(n->receiver, scope, *input);
  const Collection& in = n->receiver ? *input : *scope.focus;
  const Invocation call{*this, n, scope, in, out};
  switch (n->function) {
    case Function::kEmpty:
    case Function::kExists:
    case Function::kAll:
    case Function::kAllTrue:
    case Function::kAnyTrue:
    case Function::kAllFalse:
    case Function::kAnyFalse:
    case Function::kSubsetOf:
    case Function::kSupersetOf:
    case Function::kCount:
    case Function::kDistinct:
    case Function::kIsDistinct:
    case Function::kNot:
      return Existence(call);
    case Function::kWhere:
    case Function::kSelect:
    case Function::kRepeat:
    case Function::kOfType:
    case Function::kIif:
      return Filtering(call);
    case Function::kSingle:
    case Function::kFirst:
    case Function::kLast:
    case Function::kTail:
    case Function::kSkip:
    case Function::kTake:
    case Function::kIntersect:
    case Function::kExclude:
    case Function::kUnion:
    case Function::kCombine:
      return Subsetting(call);
    case Function::kIndexOf:
    case Function::kLastIndexOf:
    case Function::kSubstring:
    case Function::kStartsWith:
    case Function::kEndsWith:
    case Function::kContains:
    case Function::kUpper:
    case Function::kLower:
    case Function::kReplace:
    case Function::kLength:
    case Function::kToChars:
    case Function::kSplit:
    case Function::kJoin:
    case Function::kTrim:
      return Strings(call);
    case Function::kEncode:
    case Function::kDecode:
    case Function::kEscape:
    case Function::kUnescape:
      return StringCodecs(call);
    case Function::kMatches:
    case Function::kMatchesFull:
    case Function::kReplaceMatches:
      return StringPatterns(call);
    case Function::kChildren:
    case Function::kDescendants:
    case Function::kTrace:
    case Function::kNow:
    case Function::kToday:
    case Function::kTimeOfDay:
    case Function::kYearOf:
    case Function::kMonthOf:
    case Function::kDayOf:
    case Function::kHourOf:
    case Function::kMinuteOf:
    case Function::kSecondOf:
    case Function::kMillisecondOf:
    case Function::kTimezoneOffsetOf:
    case Function::kDateOf:
    case Function::kTimeOf:
      return Utility(call);
    case Function::kAggregate:
    case Function::kSum:
    case Function::kAvg:
    case Function::kMin:
    case Function::kMax:
      return Aggregates(call);
    case Function::kIs:
    case Function::kAs:
    case Function::kType:
    case Function::kExtension:
    case Function::kHasValue:
    case Function::kGetValue:
    case Function::kResolve:
    case Function::kComparable:
    case Function::kPrecision:
      return TypesAndFhir(call);
    case Function::kToBoolean:
    case Function::kConvertsToBoolean:
    case Function::kToInteger:
    case Function::kConvertsToInteger:
    case Function::kToLong:
    case Function::kConvertsToLong:
    case Function::kToDecimal:
    case Function::kConvertsToDecimal:
    case Function::kToString:
    case Function::kConvertsToString:
    case Function::kToDate:
    case Function::kConvertsToDate:
    case Function::kToDateTime:
    case Function::kConvertsToDateTime:
    case Function::kToTime:
    case Function::kConvertsToTime:
    case Function::kToQuantity:
    case Function::kConvertsToQuantity:
      return Convert(n, scope, in, out);
    case Function::kAbs:
    case Function::kCeiling:
    case Function::kExp:
    case Function::kFloor:
    case Function::kLn:
    case Function::kLog:
    case Function::kPower:
    case Function::kRound:
    case Function::kSqrt:
    case Function::kTruncate:
      return Math(n, scope, in, out);
    case Function::kFactoryString:
    case Function::kFactoryInteger:
    case Function::kFactoryInteger64:
    case Function::kFactoryDecimal:
    case Function::kFactoryBoolean:
    case Function::kFactoryDate:
    case Function::kFactoryDateTime:
    case Function::kFactoryTime:
    case Function::kFactoryUri:
    case Function::kFactoryCode:
    case Function::kFactoryExtension:
    case Function::kFactoryCoding:
    case Function::kFactoryQuantity:
      return Factory(n, scope, out);
  }
}

// --- Invocation helpers

void Invocation::Arg(std::size_t i, Collection& into) const {
  state.Eval(node->args[i], scope, into);
}

void Invocation::Lambda(const AstNode* body, const Value& item, std::int64_t index,
                        const Collection* total, Collection& into) const {
  EvaluatorState::Temp focus(state);
  focus->push_back(item);
  Scope s{&*focus, &(*focus)[0], index, total};
  state.Eval(body, s, into);
}

const Value* Invocation::Single(const Collection& c, const char* what) const {
  if (c.empty()) return nullptr;
  if (c.size() > 1)
    Fail(std::string(node->name) + "() requires a single " + what + ", got " +
         std::to_string(c.size()) + " items");
  return &c[0];
}

std::optional<Value> Invocation::InputValue(const char* what) const {
  const Value* v = Single(in, what);
  Value s;
  if (!v || !state.ToSystem(*v, s)) return std::nullopt;
  return s;
}

std::optional<std::string_view> Invocation::InputString() const {
  auto v = InputValue("String");
  if (!v) return std::nullopt;
  if (v->kind != ValueKind::kString) Fail(std::string(node->name) + "() requires a String input");
  return v->text;
}

std::optional<Value> Invocation::ArgValue(std::size_t i, Collection& tmp) const {
  Arg(i, tmp);
  const Value* v = Single(tmp, "argument");
  Value s;
  if (!v || !state.ToSystem(*v, s)) return std::nullopt;
  return s;
}

std::optional<std::string_view> Invocation::ArgString(std::size_t i, Collection& tmp) const {
  auto v = ArgValue(i, tmp);
  if (!v) return std::nullopt;
  if (v->kind != ValueKind::kString)
    Fail(std::string(node->name) + "() requires a String argument");
  return v->text;
}

std::optional<std::int64_t> Invocation::ArgInteger(std::size_t i, Collection& tmp) const {
  auto v = ArgValue(i, tmp);
  if (!v) return std::nullopt;
  if (v->kind != ValueKind::kInteger)
    Fail(std::string(node->name) + "() requires an Integer argument");
  return v->integer;
}

void Invocation::PushBool(bool b) const { out.push_back(MakeBoolean(b)); }
void Invocation::PushString(std::string_view s) const { out.push_back(MakeString(state.Store(s))); }

// Existence: empty, exists, all, allTrue..., subsetOf, count, distinct, not.
void EvaluatorState::Existence(const Invocation& call) {
  const AstNode* n = call.node;
  const Collection& in = call.in;
  Collection& out = call.out;
  switch (n->function) {
    case Function::kEmpty:
      return call.PushBool(in.empty());
    case Function::kExists:
      if (n->args.empty()) return call.PushBool(!in.empty());
      for (std::size_t i = 0; i < in.size(); ++i) {
        Temp r(*this);
        call.Lambda(n->args[0], in[i], static_cast<std::int64_t>(i), nullptr, *r);
        if (CriteriaTrue(*r)) return call.PushBool(true);
      }
      return call.PushBool(false);
    case Function::kAll:
      for (std::size_t i = 0; i < in.size(); ++i) {
        Temp r(*this);
        call.Lambda(n->args[0], in[i], static_cast<std::int64_t>(i), nullptr, *r);
        if (!CriteriaTrue(*r)) return call.PushBool(false);
      }
      return call.PushBool(true);
    case Function::kAllTrue:
    case Function::kAnyTrue:
    case Function::kAllFalse:
    case Function::kAnyFalse: {
      bool want = n->function == Function::kAllTrue || n->function == Function::kAnyTrue;
      bool all = n->function == Function::kAllTrue || n->function == Function::kAllFalse;
      for (const Value& v : in) {
        Value s;
        if (!ToSystem(v, s) || s.kind != ValueKind::kBoolean)
          Fail(std::string(n->name) + "() requires Booleans");
        if (all && s.boolean != want) return call.PushBool(false);
        if (!all && s.boolean == want) return call.PushBool(true);
      }
      return call.PushBool(all);
    }
    case Function::kSubsetOf:
    case Function::kSupersetOf: {
      Temp other(*this);
      call.Arg(0, *other);
      const Collection& sub = n->function == Function::kSubsetOf ? in : *other;
      const Collection& super = n->function == Function::kSubsetOf ? *other : in;
      // Value-less primitives (only `_name` extensions) match each other one to one.
      auto valueless = [](const Value& v) { return v.kind == ValueKind::kNode && !v.has_element; };
      std::size_t sub_valueless = 0, super_valueless = 0;
      for (const Value& v : sub) {
        if (valueless(v))
          ++sub_valueless;
        else if (!Contains(super, v))
          return call.PushBool(false);
      }
      for (const Value& v : super) super_valueless += valueless(v);
      return call.PushBool(sub_valueless <= super_valueless);
    }
    case Function::kCount:
      out.push_back(MakeInteger(static_cast<std::int64_t>(in.size())));
      return;
    case Function::kDistinct: {
      Temp d(*this);
      for (const Value& v : in) {
        if (!Contains(*d, v)) d->push_back(v);
      }
      out.insert(out.end(), d->begin(), d->end());
      return;
    }
    case Function::kIsDistinct: {
      Temp d(*this);
      for (const Value& v : in) {
        if (!Contains(*d, v)) d->push_back(v);
      }
      return call.PushBool(d->size() == in.size());
    }
    case Function::kNot: {
      auto b = AsBoolean(in, "not()");
      if (b) call.PushBool(!*b);
      return;
    }
    default:
      return;
  }
}

// Filtering and projection: where, select, repeat, ofType.
void EvaluatorState::Filtering(const Invocation& call) {
  const AstNode* n = call.node;
  const Collection& in = call.in;
  Collection& out = call.out;
  switch (n->function) {
    case Function::kWhere:
      for (std::size_t i = 0; i < in.size(); ++i) {
        Temp r(*this);
        call.Lambda(n->args[0], in[i], static_cast<std::int64_t>(i), nullptr, *r);
        if (CriteriaTrue(*r)) out.push_back(in[i]);
      }
      return;
    case Function::kSelect:
      for (std::size_t i = 0; i < in.size(); ++i)
        call.Lambda(n->args[0], in[i], static_cast<std::int64_t>(i), nullptr, out);
      return;
    case Function::kRepeat: {
      Temp queue(*this), next(*this), seen(*this);
      *queue = in;
      while (!queue->empty()) {
        next->clear();
        for (std::size_t i = 0; i < queue->size(); ++i) {
          Temp r(*this);
          call.Lambda(n->args[0], (*queue)[i], static_cast<std::int64_t>(i), nullptr, *r);
          for (const Value& v : *r) {
            if (!Contains(*seen, v)) {
              seen->push_back(v);
              next->push_back(v);
            }
          }
          if (seen->size() > kMaxRepeatItems)
            Fail("repeat() produced more than " + std::to_string(kMaxRepeatItems) + " items");
        }
        std::swap(*queue, *next);
      }
      out.insert(out.end(), seen->begin(), seen->end());
      return;
    }
    case Function::kOfType:
      for (const Value& v : in) {
        if (IsType(v, n->args[0]->name)) out.push_back(v);
      }
      return;
    case Function::kIif: {
      if (in.size() > 1) Fail("iif() on " + std::to_string(in.size()) + " items");
      Temp c(*this);
      if (in.empty()) {
        call.Arg(0, *c);
      } else {
        call.Lambda(n->args[0], in[0], 0, nullptr, *c);
      }
      auto b = AsBoolean(*c, "iif() criterion");
      if (!c->empty()) {
        Value s;
        if (!ToSystem((*c)[0], s) || s.kind != ValueKind::kBoolean)
          Fail("iif() criterion must be Boolean");
      }
      std::size_t branch = b && *b ? 1 : 2;
      if (branch >= n->args.size()) return;
      if (in.empty())
        call.Arg(branch, out);
      else
        call.Lambda(n->args[branch], in[0], 0, nullptr, out);
      return;
    }
    default:
      return;
  }
}

// Subsetting and combining: single, first, skip, intersect, union....
void EvaluatorState::Subsetting(const Invocation& call) {
  const AstNode* n = call.node;
  const Collection& in = call.in;
  Collection& out = call.out;
  switch (n->function) {
    case Function::kSingle:
      if (in.size() > 1) Fail("single() on " + std::to_string(in.size()) + " items");
      out.insert(out.end(), in.begin(), in.end());
      return;
    case Function::kFirst:
      if (!in.empty()) out.push_back(in.front());
      return;
    case Function::kLast:
      if (!in.empty()) out.push_back(in.back());
      return;
    case Function::kTail:
      if (in.size() > 1) out.insert(out.end(), in.begin() + 1, in.end());
      return;
    case Function::kSkip:
    case Function::kTake: {
      Temp t(*this);
      auto k = call.ArgInteger(0, *t);
      if (!k) return;
      std::size_t count = static_cast<std::size_t>(std::max<std::int64_t>(0, *k));
      count = std::min(count, in.size());
      if (n->function == Function::kSkip)
        out.insert(out.end(), in.begin() + count, in.end());
      else
        out.insert(out.end(), in.begin(), in.begin() + count);
      return;
    }
    case Function::kIntersect:
    case Function::kExclude: {
      Temp other(*this), kept(*this);
      call.Arg(0, *other);
      for (const Value& v : in) {
        bool member = Contains(*other, v);
        if (n->function == Function::kExclude) {
          if (!member) kept->push_back(v);
        } else if (member && !Contains(*kept, v)) {
          kept->push_back(v);
        }
      }
      out.insert(out.end(), kept->begin(), kept->end());
      return;
    }
    case Function::kUnion: {
      Temp other(*this), merged(*this);
      call.Arg(0, *other);
      for (const Collection* c : {&in, static_cast<const Collection*>(&*other)}) {
        for (const Value& v : *c) {
          if (!Contains(*merged, v)) merged->push_back(v);
        }
      }
      out.insert(out.end(), merged->begin(), merged->end());
      return;
    }
    case Function::kCombine:
      out.insert(out.end(), in.begin(), in.end());
      call.Arg(0, out);
      return;
    default:
      return;
  }
}

// String manipulation.
void EvaluatorState::Strings(const Invocation& call) {
  const AstNode* n = call.node;
  const Collection& in = call.in;
  Collection& out = call.out;
  switch (n->function) {
    case Function::kIndexOf:
    case Function::kLastIndexOf: {
      auto s = call.InputString();
      Temp t(*this);
      auto sub = call.ArgString(0, *t);
      if (!s || !sub) return;
      std::size_t p = n->function == Function::kIndexOf ? s->find(*sub) : s->rfind(*sub);
      out.push_back(MakeInteger(p == std::string_view::npos ? -1 : static_cast<std::int64_t>(p)));
      return;
    }
    case Function::kSubstring: {
      auto s = call.InputString();
      Temp t(*this), t2(*this);
      auto start = call.ArgInteger(0, *t);
      if (!s || !start) return;
      if (*start < 0 || static_cast<std::size_t>(*start) >= s->size()) return;
      std::size_t len = std::string_view::npos;
      if (n->args.size() > 1) {
        auto l = call.ArgInteger(1, *t2);
        if (!l) return call.PushString(s->substr(*start));
        len = static_cast<std::size_t>(std::max<std::int64_t>(0, *l));
      }
      return call.PushString(s->substr(*start, len));
    }
    case Function::kStartsWith:
    case Function::kEndsWith:
    case Function::kContains: {
      auto s = call.InputString();
      Temp t(*this);
      auto sub = call.ArgString(0, *t);
      if (!s || !sub) return;
      if (n->function == Function::kStartsWith) return call.PushBool(s->starts_with(*sub));
      if (n->function == Function::kEndsWith) return call.PushBool(s->ends_with(*sub));
      return call.PushBool(s->find(*sub) != std::string_view::npos);
    }
    case Function::kUpper:
    case Function::kLower: {
      auto s = call.InputString();
      if (!s) return;
      std::string r(*s);
      for (char& c : r)
        c = static_cast<char>(n->function == Function::kUpper
                                  ? std::toupper(static_cast<unsigned char>(c))
                                  : std::tolower(static_cast<unsigned char>(c)));
      return call.PushString(r);
    }
    case Function::kReplace: {
      auto s = call.InputString();
      Temp a(*this), b(*this);
      auto pattern = call.ArgString(0, *a);
      auto subst = call.ArgString(1, *b);
      if (!s || !pattern || !subst) return;
      std::string r;
      if (pattern->empty()) {
        r += *subst;
        for (char c : *s) r += c, r += *subst;
      } else {
        std::size_t pos = 0;
        for (std::size_t f; (f = s->find(*pattern, pos)) != std::string_view::npos;
             pos = f + pattern->size())
          r.append(s->substr(pos, f - pos)).append(*subst);
        r.append(s->substr(pos));
      }
      return call.PushString(r);
    }
    case Function::kLength: {
      auto s = call.InputString();
      if (s) out.push_back(MakeInteger(static_cast<std::int64_t>(s->size())));
      return;
    }
    case Function::kToChars: {
      auto s = call.InputString();
      if (!s) return;
      for (std::size_t i = 0; i < s->size(); ++i) out.push_back(MakeString(s->substr(i, 1)));
      return;
    }
    case Function::kSplit: {
      auto s = call.InputString();
      Temp t(*this);
      auto sep = call.ArgString(0, *t);
      if (!s || !sep) return;
      if (sep->empty()) {
        for (std::size_t i = 0; i < s->size(); ++i) out.push_back(MakeString(s->substr(i, 1)));
        return;
      }
      std::size_t pos = 0;
      for (std::size_t f; (f = s->find(*sep, pos)) != std::string_view::npos; pos = f + sep->size())
        out.push_back(MakeString(s->substr(pos, f - pos)));
      out.push_back(MakeString(s->substr(pos)));
      return;
    }
    case Function::kJoin: {
      Temp t(*this);
      std::string_view sep;
      if (!n->args.empty()) {
        auto s = call.ArgString(0, *t);
        if (s) sep = *s;
      }
      if (in.empty()) return;
      std::string r;
      bool first = true;
      for (const Value& item : in) {
        Value v;
        if (!ToSystem(item, v)) continue;
        if (v.kind != ValueKind::kString) Fail("join() requires Strings");
        if (!first) r += sep;
        first = false;
        r += v.text;
      }
      return call.PushString(r);
    }
    case Function::kTrim: {
      auto s = call.InputString();
      if (!s) return;
      std::string_view v = *s;
      while (!v.empty() && std::isspace(static_cast<unsigned char>(v.front()))) v.remove_prefix(1);
      while (!v.empty() && std::isspace(static_cast<unsigned char>(v.back()))) v.remove_suffix(1);
      out.push_back(MakeString(v));
      return;
    }
    default:
      return;
  }
}

// Regular expressions: matches, matchesFull, replaceMatches.
void EvaluatorState::StringPatterns(const Invocation& call) {
  const AstNode* n = call.node;
  switch (n->function) {
    case Function::kMatches:
    case Function::kMatchesFull:
    case Function::kReplaceMatches: {
      auto s = call.InputString();
      Temp a(*this), b(*this);
      auto pattern = call.ArgString(0, *a);
      std::optional<std::string_view> subst, flags;
      if (n->function == Function::kReplaceMatches)
        subst = call.ArgString(1, *b);
      else if (n->args.size() > 1)
        flags = call.ArgString(1, *b);
      if (!s || !pattern || (n->function == Function::kReplaceMatches && !subst)) return;
      auto options = std::regex::ECMAScript;
      for (char f : flags.value_or("")) {
        if (f == 'i')
          options |= std::regex::icase;
        else if (f == 'm')
          options |= std::regex::multiline;
        else
          Fail(std::string("unsupported regular expression flag '") + f + "'");
      }
      // libstdc++'s regex matcher recurses per character: bound the input so it cannot exhaust
      // the stack of the thread evaluating.
      if (s->size() > kMaxRegexInput)
        Fail(std::string(n->name) + "() input longer than " + std::to_string(kMaxRegexInput) +
             " bytes");
      try {
        std::string p = DotMatchesAll(*pattern);
        if (n->function == Function::kMatchesFull) p = "^(?:" + p + ")$";
        std::regex re{p, options};
        std::string str(*s);
        if (n->function != Function::kReplaceMatches)
          return call.PushBool(std::regex_search(str, re));
        if (pattern->empty()) return call.PushString(str);
        return call.PushString(std::regex_replace(str, re, std::string(*subst)));
      } catch (const std::regex_error&) {
        Fail("invalid regular expression '" + std::string(*pattern) + "'");
      }
    }
    default:
      return;
  }
}

// encode, decode, escape, unescape.
void EvaluatorState::StringCodecs(const Invocation& call) {
  const AstNode* n = call.node;
  switch (n->function) {
    case Function::kEncode:
    case Function::kDecode: {
      auto s = call.InputString();
      Temp t(*this);
      auto format = call.ArgString(0, *t);
      if (!s || !format) return;
      bool enc = n->function == Function::kEncode;
      if (*format == "base64" || *format == "urlbase64")
        return call.PushString(enc ? Base64Encode(*s, *format == "urlbase64") : Base64Decode(*s));
      if (*format == "hex") {
        std::string r;
        static const char* kHex = "0123456789abcdef";
        if (enc) {
          for (unsigned char c : *s) r += kHex[c >> 4], r += kHex[c & 15];
        } else {
          if (s->size() % 2 != 0) Fail("decode('hex') of an odd number of digits");
          for (std::size_t i = 0; i + 1 < s->size(); i += 2)
            r += static_cast<char>(std::stoi(std::string(s->substr(i, 2)), nullptr, 16));
        }
        return call.PushString(r);
      }
      return;
    }
    case Function::kEscape:
    case Function::kUnescape: {
      auto s = call.InputString();
      Temp t(*this);
      auto target = call.ArgString(0, *t);
      if (!s || !target) return;
      std::string r;
      bool html = *target == "html";
      if (n->function == Function::kEscape) {
        for (char c : *s) {
          if (html && c == '<')
            r += "&lt;";
          else if (html && c == '>')
            r += "&gt;";
          else if (html && c == '&')
            r += "&amp;";
          else if (html && c == '"')
            r += "&quot;";
          else if (!html && c == '"')
            r += "\\\"";
          else if (!html && c == '\\')
            r += "\\\\";
          else
            r += c;
        }
      } else {
        std::string_view v = *s;
        for (std::size_t i = 0; i < v.size(); ++i) {
          if (html && v[i] == '&') {
            static const std::pair<std::string_view, char> kEntities[] = {
                {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&#39;", '\''}};
            bool done = false;
            for (auto [e, c] : kEntities) {
              if (v.substr(i).starts_with(e)) r += c, i += e.size() - 1, done = true;
              if (done) break;
            }
            if (!done) r += v[i];
          } else if (!html && v[i] == '\\' && i + 1 < v.size() &&
                     std::strchr("\"\\/bfnrt", v[i + 1])) {
            static const std::string_view kFrom = "\"\\/bfnrt", kTo = "\"\\/\b\f\n\r\t";
            r += kTo[kFrom.find(v[++i])];
          } else {
            r += v[i];
          }
        }
      }
      return call.PushString(r);
    }
    default:
      return;
  }
}

// Tree navigation, trace, now/today, date/time components.
void EvaluatorState::Utility(const Invocation& call) {
  const AstNode* n = call.node;
  const Collection& in = call.in;
  Collection& out = call.out;
  switch (n->function) {
    case Function::kChildren:
      for (const Value& v : in) AllChildren(v, out);
      return;
    case Function::kDescendants: {
      Temp level(*this), next(*this);
      *level = in;
      while (!level->empty()) {
        next->clear();
        for (const Value& v : *level) AllChildren(v, *next);
        out.insert(out.end(), next->begin(), next->end());
        std::swap(*level, *next);
      }
      return;
    }
    case Function::kTrace: {
      // trace(name[, projection]) hands the input (or its projection) to the context's tracer
      // and returns the input unchanged.
      if (const auto& tracer = context().trace) {
        Temp t(*this), projected(*this);
        auto name = call.ArgString(0, *t);
        if (call.node->args.size() > 1) {
          for (std::size_t i = 0; i < in.size(); ++i)
            call.Lambda(call.node->args[1], in[i], static_cast<std::int64_t>(i), nullptr,
                        *projected);
        }
        tracer(name.value_or(""), call.node->args.size() > 1 ? *projected : in);
      }
      out.insert(out.end(), in.begin(), in.end());
      return;
    }
    case Function::kNow:
    case Function::kToday:
    case Function::kTimeOfDay: {
      Value v;
      if (!now_) now_ = NowUtc();
      v.temporal = *now_;
      v.kind = n->function == Function::kNow     ? ValueKind::kDateTime
               : n->function == Function::kToday ? ValueKind::kDate
                                                 : ValueKind::kTime;
      if (n->function == Function::kToday) v.temporal.precision = Precision::kDay;
      out.push_back(v);
      return;
    }
    case Function::kYearOf:
    case Function::kMonthOf:
    case Function::kDayOf:
    case Function::kHourOf:
    case Function::kMinuteOf:
    case Function::kSecondOf:
    case Function::kMillisecondOf:
    case Function::kTimezoneOffsetOf:
    case Function::kDateOf:
    case Function::kTimeOf: {
      auto v = call.InputValue("date/time");
      if (!v) return;
      if (v->kind == ValueKind::kString) {
        Value t;
        if (!ParseTemporalLiteral(v->text, t)) return;
        v = t;
      }
      if (v->kind != ValueKind::kDate && v->kind != ValueKind::kDateTime &&
          v->kind != ValueKind::kTime)
        return;
      const Temporal& t = v->temporal;
      bool time = v->kind == ValueKind::kTime;
      auto part = [&](Precision p, std::int64_t value) {
        if (t.precision >= p) out.push_back(MakeInteger(value));
      };
      switch (n->function) {
        case Function::kYearOf:
          if (!time) part(Precision::kYear, t.year);
          return;
        case Function::kMonthOf:
          if (!time) part(Precision::kMonth, t.month);
          return;
        case Function::kDayOf:
          if (!time) part(Precision::kDay, t.day);
          return;
        case Function::kHourOf:
          part(Precision::kHour, t.hour);
          return;
        case Function::kMinuteOf:
          part(Precision::kMinute, t.minute);
          return;
        case Function::kSecondOf:
          part(Precision::kSecond, t.second);
          return;
        case Function::kMillisecondOf:
          part(Precision::kMillisecond, t.millisecond);
          return;
        case Function::kTimezoneOffsetOf:
          if (v->kind == ValueKind::kDateTime && t.has_tz) {
            Value d = MakeDecimal(t.tz_minutes / 60.0);
            out.push_back(d);
          }
          return;
        case Function::kDateOf:
          if (!time) {
            Value d = *v;
            d.kind = ValueKind::kDate;
            d.temporal.precision = std::min(t.precision, Precision::kDay);
            d.temporal.has_tz = false;
            out.push_back(d);
          }
          return;
        case Function::kTimeOf:
          if (v->kind == ValueKind::kDateTime && t.precision >= Precision::kHour) {
            Value d = *v;
            d.kind = ValueKind::kTime;
            d.temporal.has_tz = false;
            out.push_back(d);
          }
          return;
        default:
          return;
      }
    }
    default:
      return;
  }
}

// Aggregate, sum, min, max, avg.
void EvaluatorState::Aggregates(const Invocation& call) {
  const AstNode* n = call.node;
  const Collection& in = call.in;
  Collection& out = call.out;
  switch (n->function) {
    case Function::kAggregate: {
      Temp total(*this), next(*this);
      if (n->args.size() > 1) call.Arg(1, *total);
      for (std::size_t i = 0; i < in.size(); ++i) {
        next->clear();
        call.Lambda(n->args[0], in[i], static_cast<std::int64_t>(i), &*total, *next);
        std::swap(*total, *next);
      }
      out.insert(out.end(), total->begin(), total->end());
      return;
    }
    case Function::kSum:
    case Function::kAvg: {
      for (const Value& v : in) {
        Value s;
        if (!ToSystem(v, s) || (!IsNumber(s) && s.kind != ValueKind::kQuantity)) return;
      }
      if (in.empty()) return;
      Temp acc(*this), next(*this);
      acc->push_back(in[0]);
      for (std::size_t i = 1; i < in.size(); ++i) {
        next->clear();
        Arithmetic(BinaryOp::kPlus, (*acc)[0], in[i], *next);
        if (next->empty()) return;
        std::swap(*acc, *next);
      }
      if (n->function == Function::kAvg) {
        next->clear();
        Arithmetic(BinaryOp::kDivide, (*acc)[0], MakeInteger(static_cast<std::int64_t>(in.size())),
                   *next);
        std::swap(*acc, *next);
      }
      Value v;
      if (!acc->empty() && ToSystem((*acc)[0], v)) out.push_back(v);
      return;
    }
    case Function::kMin:
    case Function::kMax: {
      std::optional<Value> best;
      for (const Value& v : in) {
        Value s;
        if (!ToSystem(v, s)) return;
        if (!best) {
          best = s;
          continue;
        }
        auto c = Compare(s, *best);
        if (!c) Fail(std::string(n->name) + "() on values that do not compare");
        if ((n->function == Function::kMin && *c < 0) || (n->function == Function::kMax && *c > 0))
          best = s;
      }
      if (best) out.push_back(*best);
      return;
    }
    default:
      return;
  }
}

// Is, as, type(), extension(), hasValue(), resolve(), comparable()....
void EvaluatorState::TypesAndFhir(const Invocation& call) {
  const AstNode* n = call.node;
  const Collection& in = call.in;
  Collection& out = call.out;
  switch (n->function) {
    case Function::kIs:
    case Function::kAs: {
      if (in.empty()) return;
      if (in.size() > 1) Fail(std::string(n->name) + "() requires a single item");
      bool match = IsType(in[0], n->args[0]->name);
      if (n->function == Function::kIs) return call.PushBool(match);
      if (match) out.push_back(in[0]);
      return;
    }
    case Function::kType:
      for (const Value& v : in) {
        Value t;
        t.kind = ValueKind::kTypeInfo;
        t.text = TypeName(v, &t.unit);
        out.push_back(t);
      }
      return;
    case Function::kExtension: {
      Temp t(*this), ext(*this);
      auto url = call.ArgString(0, *t);
      if (!url) return;
      for (const Value& v : in) AppendChildren(v, "extension", "_extension", *ext);
      for (const Value& e : *ext) {
        std::string_view u;
        if (e.has_element && !e.element["url"].get(u) && u == *url) out.push_back(e);
      }
      return;
    }
    case Function::kHasValue: {
      Value v;
      if (in.size() != 1) return call.PushBool(false);
      if (in[0].kind != ValueKind::kNode) return call.PushBool(in[0].kind != ValueKind::kQuantity);
      bool xhtml = in[0].type >= 0 && model_.type(in[0].type).name == "xhtml";
      return call.PushBool(in[0].has_element && !xhtml && ToSystem(in[0], v) &&
                           v.kind != ValueKind::kQuantity);
    }
    case Function::kGetValue: {
      Value v;
      if (in.size() == 1 && in[0].kind == ValueKind::kNode && ToSystem(in[0], v) &&
          v.kind != ValueKind::kQuantity)
        out.push_back(v);
      return;
    }
    case Function::kResolve:
      for (const Value& v : in) Resolve(v, out);
      return;
    case Function::kComparable: {
      if (in.empty()) Fail("comparable() requires a Quantity input");
      auto a = call.InputValue("Quantity");
      if (!a) return call.PushBool(false);
      Temp t(*this);
      auto b = call.ArgValue(0, *t);
      if (!b) return call.PushBool(false);
      return call.PushBool(QuantitiesComparable(*a, *b));
    }
    case Function::kPrecision: {
      auto v = call.InputValue("value");
      if (!v) return;
      if (v->kind == ValueKind::kDecimal)
        return out.push_back(MakeInteger(v->integer < 0 ? 8 : v->integer));
      if (v->kind == ValueKind::kInteger) return out.push_back(MakeInteger(0));
      static constexpr int kDigits[] = {4, 6, 8, 10, 12, 14, 17};
      if (v->kind == ValueKind::kDate || v->kind == ValueKind::kDateTime)
        return out.push_back(MakeInteger(kDigits[static_cast<int>(v->temporal.precision)]));
      if (v->kind == ValueKind::kTime)
        return out.push_back(MakeInteger(kDigits[static_cast<int>(v->temporal.precision)] - 8));
      return;
    }
    default:
      return;
  }
}

void EvaluatorState::Resolve(const Value& v, Collection& out) {
  std::string_view ref;
  if (v.kind == ValueKind::kString)
    ref = v.text;
  else if (v.kind == ValueKind::kNode && v.has_element && !v.element.get(ref)) {
  } else if (v.kind != ValueKind::kNode || !v.has_element || v.element["reference"].get(ref))
    return;
  if (ref.empty()) return;
  const Context& c = context();
  if (ref[0] == '#') {
    simdjson::dom::array contained;
    if (c.resource && !(*c.resource)["contained"].get(contained)) {
      for (auto r : contained) {
        std::string_view id;
        if (!r["id"].get(id) && id == ref.substr(1)) out.push_back(MakeResourceNode(r));
      }
    }
    return;
  }
  // Bundle entries resolve among themselves by fullUrl or Type/id.
  simdjson::dom::array entries;
  if (c.resource && !(*c.resource)["entry"].get(entries)) {
    for (auto e : entries) {
      std::string_view full, type, id;
      simdjson::dom::element r;
      if (e["resource"].get(r)) continue;
      bool match = !e["fullUrl"].get(full) && full == ref;
      if (!match && !r["resourceType"].get(type) && !r["id"].get(id))
        match = ref.size() == type.size() + 1 + id.size() && ref.starts_with(type) &&
                ref[type.size()] == '/' && ref.ends_with(id);
      if (match) return out.push_back(MakeResourceNode(r));
    }
  }
  if (c.resolver) {
    if (auto r = c.resolver->Resolve(ref)) out.push_back(MakeResourceNode(*r));
  }
}

}  // namespace topicbridge::fhirpath
