// ParseLsn / FormatLsn: the "X/Y" text form PostgreSQL uses for WAL positions.
#include "topicbridge/lsn.h"

#include <charconv>
#include <cstdio>

namespace topicbridge {
namespace {

// One half: 1 to 8 hex digits, nothing else.
bool ParseHalf(std::string_view text, std::uint32_t* value) {
  if (text.empty() || text.size() > 8) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *value, 16);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::optional<Lsn> ParseLsn(std::string_view text) {
  const std::size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  std::uint32_t high = 0;
  std::uint32_t low = 0;
  if (!ParseHalf(text.substr(0, slash), &high) || !ParseHalf(text.substr(slash + 1), &low)) {
    return std::nullopt;
  }
  return (static_cast<Lsn>(high) << 32) | low;
}

std::string FormatLsn(Lsn lsn) {
  char buffer[24];
  const int n = std::snprintf(buffer, sizeof buffer, "%X/%X", static_cast<unsigned>(lsn >> 32),
                              static_cast<unsigned>(lsn & 0xFFFFFFFFu));
  return std::string(buffer, static_cast<std::size_t>(n));
}

}  // namespace topicbridge
