// Quantity units: FHIRPath calendar durations and a small UCUM subset (SI prefixes, mass, length,
// time, volume, temperature, compound units such as 'kg.m/s2') for comparison and conversion.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace topicbridge::fhirpath {

// A unit reduced to base dimensions: value_in_base = value * factor + offset.
struct CanonicalUnit {
  double factor = 1;
  double offset = 0;
  signed char dims[6] = {0, 0, 0, 0, 0, 0};  // m g s K mol (arbitrary)
  bool SameDimension(const CanonicalUnit& o) const;
};

// UCUM code -> canonical form; nullopt for units outside the supported subset.
std::optional<CanonicalUnit> ParseUcum(std::string_view code);

// Calendar keyword ("years", "day") -> its singular form; empty when not a calendar word.
std::string_view CalendarSingular(std::string_view word);
// UCUM code of a calendar word of week or below ("day" -> "d"); year/month -> "a"/"mo".
std::string_view CalendarToUcum(std::string_view singular);
// UCUM time code -> calendar singular ("mo" -> "month"), or empty.
std::string_view UcumToCalendar(std::string_view code);

// value in `from` expressed in `to`; nullopt when incompatible or unknown.
std::optional<double> ConvertUnit(double value, std::string_view from, std::string_view to);

}  // namespace topicbridge::fhirpath
