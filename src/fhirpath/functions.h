// The FHIRPath function library: names, arities and which arguments are lambdas (evaluated per
// input item with $this bound) rather than values evaluated once.
#pragma once

#include <cstdint>
#include <string_view>

namespace topicbridge::fhirpath {

// clang-format off
#define TOPICBRIDGE_FHIRPATH_FUNCTIONS(X) \
  X(Empty, "empty", 0, 0, 0) \
  X(Exists, "exists", 0, 1, 1) \
  X(All, "all", 1, 1, 1) \
  X(AllTrue, "allTrue", 0, 0, 0) \
  X(AnyTrue, "anyTrue", 0, 0, 0) \
  X(AllFalse, "allFalse", 0, 0, 0) \
  X(AnyFalse, "anyFalse", 0, 0, 0) \
  X(SubsetOf, "subsetOf", 1, 1, 0) \
  X(SupersetOf, "supersetOf", 1, 1, 0) \
  X(Count, "count", 0, 0, 0) \
  X(Distinct, "distinct", 0, 0, 0) \
  X(IsDistinct, "isDistinct", 0, 0, 0) \
  X(Where, "where", 1, 1, 1) \
  X(Select, "select", 1, 1, 1) \
  X(Repeat, "repeat", 1, 1, 1) \
  X(OfType, "ofType", 1, 1, 2) \
  X(Single, "single", 0, 0, 0) \
  X(First, "first", 0, 0, 0) \
  X(Last, "last", 0, 0, 0) \
  X(Tail, "tail", 0, 0, 0) \
  X(Skip, "skip", 1, 1, 0) \
  X(Take, "take", 1, 1, 0) \
  X(Intersect, "intersect", 1, 1, 0) \
  X(Exclude, "exclude", 1, 1, 0) \
  X(Union, "union", 1, 1, 0) \
  X(Combine, "combine", 1, 1, 0) \
  X(Iif, "iif", 2, 3, 1) \
  X(ToBoolean, "toBoolean", 0, 0, 0) \
  X(ConvertsToBoolean, "convertsToBoolean", 0, 0, 0) \
  X(ToInteger, "toInteger", 0, 0, 0) \
  X(ConvertsToInteger, "convertsToInteger", 0, 0, 0) \
  X(ToLong, "toLong", 0, 0, 0) \
  X(ConvertsToLong, "convertsToLong", 0, 0, 0) \
  X(ToDate, "toDate", 0, 0, 0) \
  X(ConvertsToDate, "convertsToDate", 0, 0, 0) \
  X(ToDateTime, "toDateTime", 0, 0, 0) \
  X(ConvertsToDateTime, "convertsToDateTime", 0, 0, 0) \
  X(ToDecimal, "toDecimal", 0, 0, 0) \
  X(ConvertsToDecimal, "convertsToDecimal", 0, 0, 0) \
  X(ToQuantity, "toQuantity", 0, 1, 0) \
  X(ConvertsToQuantity, "convertsToQuantity", 0, 1, 0) \
  X(ToString, "toString", 0, 0, 0) \
  X(ConvertsToString, "convertsToString", 0, 0, 0) \
  X(ToTime, "toTime", 0, 0, 0) \
  X(ConvertsToTime, "convertsToTime", 0, 0, 0) \
  X(IndexOf, "indexOf", 1, 1, 0) \
  X(LastIndexOf, "lastIndexOf", 1, 1, 0) \
  X(Substring, "substring", 1, 2, 0) \
  X(StartsWith, "startsWith", 1, 1, 0) \
  X(EndsWith, "endsWith", 1, 1, 0) \
  X(Contains, "contains", 1, 1, 0) \
  X(Upper, "upper", 0, 0, 0) \
  X(Lower, "lower", 0, 0, 0) \
  X(Replace, "replace", 2, 2, 0) \
  X(Matches, "matches", 1, 2, 0) \
  X(MatchesFull, "matchesFull", 1, 2, 0) \
  X(ReplaceMatches, "replaceMatches", 2, 2, 0) \
  X(Length, "length", 0, 0, 0) \
  X(ToChars, "toChars", 0, 0, 0) \
  X(Split, "split", 1, 1, 0) \
  X(Join, "join", 0, 1, 0) \
  X(Trim, "trim", 0, 0, 0) \
  X(Encode, "encode", 1, 1, 0) \
  X(Decode, "decode", 1, 1, 0) \
  X(Escape, "escape", 1, 1, 0) \
  X(Unescape, "unescape", 1, 1, 0) \
  X(Abs, "abs", 0, 0, 0) \
  X(Ceiling, "ceiling", 0, 0, 0) \
  X(Exp, "exp", 0, 0, 0) \
  X(Floor, "floor", 0, 0, 0) \
  X(Ln, "ln", 0, 0, 0) \
  X(Log, "log", 1, 1, 0) \
  X(Power, "power", 1, 1, 0) \
  X(Round, "round", 0, 1, 0) \
  X(Sqrt, "sqrt", 0, 0, 0) \
  X(Truncate, "truncate", 0, 0, 0) \
  X(Children, "children", 0, 0, 0) \
  X(Descendants, "descendants", 0, 0, 0) \
  X(Trace, "trace", 1, 2, 3) \
  X(Now, "now", 0, 0, 0) \
  X(Today, "today", 0, 0, 0) \
  X(TimeOfDay, "timeOfDay", 0, 0, 0) \
  X(YearOf, "yearOf", 0, 0, 0) \
  X(MonthOf, "monthOf", 0, 0, 0) \
  X(DayOf, "dayOf", 0, 0, 0) \
  X(HourOf, "hourOf", 0, 0, 0) \
  X(MinuteOf, "minuteOf", 0, 0, 0) \
  X(SecondOf, "secondOf", 0, 0, 0) \
  X(MillisecondOf, "millisecondOf", 0, 0, 0) \
  X(TimezoneOffsetOf, "timezoneOffsetOf", 0, 0, 0) \
  X(DateOf, "dateOf", 0, 0, 0) \
  X(TimeOf, "timeOf", 0, 0, 0) \
  X(Aggregate, "aggregate", 1, 2, 1) \
  X(Sum, "sum", 0, 0, 0) \
  X(Min, "min", 0, 0, 0) \
  X(Max, "max", 0, 0, 0) \
  X(Avg, "avg", 0, 0, 0) \
  X(Is, "is", 1, 1, 2) \
  X(As, "as", 1, 1, 2) \
  X(Type, "type", 0, 0, 0) \
  X(Not, "not", 0, 0, 0) \
  X(Extension, "extension", 1, 1, 0) \
  X(HasValue, "hasValue", 0, 0, 0) \
  X(GetValue, "getValue", 0, 0, 0) \
  X(Resolve, "resolve", 0, 0, 0) \
  X(Comparable, "comparable", 1, 1, 0) \
  X(Precision, "precision", 0, 0, 0) \
  /* %factory (FHIR type factory API) */ \
  X(FactoryString, "string", 1, 2, 0) \
  X(FactoryInteger, "integer", 1, 2, 0) \
  X(FactoryInteger64, "integer64", 1, 2, 0) \
  X(FactoryDecimal, "decimal", 1, 2, 0) \
  X(FactoryBoolean, "boolean", 1, 2, 0) \
  X(FactoryDate, "date", 1, 2, 0) \
  X(FactoryDateTime, "dateTime", 1, 2, 0) \
  X(FactoryTime, "time", 1, 2, 0) \
  X(FactoryUri, "uri", 1, 2, 0) \
  X(FactoryCode, "code", 1, 2, 0) \
  X(FactoryExtension, "Extension", 2, 2, 0) \
  X(FactoryCoding, "Coding", 2, 4, 0) \
  X(FactoryQuantity, "Quantity", 3, 4, 0)
// clang-format on

// ArgKind: 0 = values evaluated once against the enclosing focus; 1 = lambdas; 2 = a type
// specifier; 3 = first a value, then a lambda (trace).
enum class Function : std::uint8_t {
#define X(id, name, min, max, kind) k##id,
  TOPICBRIDGE_FHIRPATH_FUNCTIONS(X)
#undef X
};

struct FunctionInfo {
  Function id;
  std::string_view name;
  int min_args;
  int max_args;
  int arg_kind;
};

// Null when no function has that name.
const FunctionInfo* FindFunction(std::string_view name);

}  // namespace topicbridge::fhirpath
