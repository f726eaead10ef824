// Lsn: a PostgreSQL write-ahead-log position, printed as "X/Y" (two hex halves).
// Plain 64-bit value; 0 means "no position".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace topicbridge {

using Lsn = std::uint64_t;

// Parses "16/B374D848". Returns nullopt on anything else.
std::optional<Lsn> ParseLsn(std::string_view text);

// Formats as PostgreSQL does: upper-case hex, no leading zeros per half.
std::string FormatLsn(Lsn lsn);

}  // namespace topicbridge
