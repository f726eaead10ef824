// Date, DateTime and Time values: parsing from literals and FHIR strings, formatting the way
// FHIR writes them, precision-aware comparison and calendar arithmetic.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "topicbridge/fhirpath_value.h"

namespace topicbridge::fhirpath {

// Text after '@': "2019-02-03", "2019-02-03T10:00:00.000+01:00", "2015T", "T14:30".
bool ParseTemporalLiteral(std::string_view text, Value& out);
// FHIR/ISO text without '@' as the given kind; false when malformed.
bool ParseDate(std::string_view text, Temporal& out);
bool ParseDateTime(std::string_view text, Temporal& out);  // a bare date is a DateTime too
bool ParseTime(std::string_view text, Temporal& out);      // "14:30:00" (no leading T)

std::string FormatTemporal(ValueKind kind, const Temporal& t);

// <0, 0, >0; nullopt when the precisions differ and the common part is equal (unknown order).
std::optional<int> CompareTemporal(ValueKind kind, const Temporal& a, const Temporal& b);

// Adds amount of a calendar unit ("year", "month", "week", "day", "hour", "minute", "second",
// "millisecond", singular). False when the unit does not apply to the value.
bool AddToTemporal(ValueKind kind, Temporal& t, double amount, std::string_view unit);

// Current instant, local date and time (UTC).
Temporal NowUtc();

}  // namespace topicbridge::fhirpath
