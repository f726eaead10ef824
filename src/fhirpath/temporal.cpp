#include "temporal.h"

#include <chrono>
#include <cmath>
#include <cstdio>

namespace topicbridge::fhirpath {
namespace {

// Reads exactly n digits at s[i].
bool Digits(std::string_view s, std::size_t& i, int n, int& out) {
  if (i + n > s.size()) return false;
  int v = 0;
  for (int k = 0; k < n; ++k) {
    char c = s[i + k];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  i += n;
  out = v;
  return true;
}

bool ParseTimePart(std::string_view s, std::size_t& i, Temporal& t, bool allow_tz) {
  int v = 0;
  if (!Digits(s, i, 2, v) || v > 23) return false;
  t.hour = static_cast<std::int8_t>(v);
  t.precision = Precision::kHour;
  if (i < s.size() && s[i] == ':') {
    ++i;
    if (!Digits(s, i, 2, v) || v > 59) return false;
    t.minute = static_cast<std::int8_t>(v);
    t.precision = Precision::kMinute;
    if (i < s.size() && s[i] == ':') {
      ++i;
      if (!Digits(s, i, 2, v) || v > 60) return false;
      t.second = static_cast<std::int8_t>(v);
      t.precision = Precision::kSecond;
      if (i < s.size() && s[i] == '.') {
        ++i;
        std::size_t b = i;
        int ms = 0, digits = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
          if (digits < 3) ms = ms * 10 + (s[i] - '0'), ++digits;
          ++i;
        }
        if (i == b) return false;
        while (digits < 3) ms *= 10, ++digits;
        t.millisecond = static_cast<std::int16_t>(ms);
        t.precision = Precision::kMillisecond;
      }
    }
  }
  if (!allow_tz || i >= s.size()) return true;
  if (s[i] == 'Z') {
    ++i;
    t.has_tz = true;
    t.tz_minutes = 0;
    return true;
  }
  if (s[i] == '+' || s[i] == '-') {
    int sign = s[i] == '-' ? -1 : 1;
    ++i;
    int h = 0, m = 0;
    if (!Digits(s, i, 2, h) || i >= s.size() || s[i] != ':') return false;
    ++i;
    if (!Digits(s, i, 2, m) || m > 59 || h * 60 + m > 14 * 60) return false;
    t.has_tz = true;
    t.tz_minutes = static_cast<std::int16_t>(sign * (h * 60 + m));
  }
  return true;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[(m - 1) % 12];
}

bool ParseDatePart(std::string_view s, std::size_t& i, Temporal& t) {
  int v = 0;
  if (!Digits(s, i, 4, v)) return false;
  t.year = v;
  t.precision = Precision::kYear;
  if (i + 1 < s.size() && s[i] == '-' && s[i + 1] >= '0' && s[i + 1] <= '9') {
    ++i;
    if (!Digits(s, i, 2, v) || v < 1 || v > 12) return false;
    t.month = static_cast<std::int8_t>(v);
    t.precision = Precision::kMonth;
    if (i + 1 < s.size() && s[i] == '-' && s[i + 1] >= '0' && s[i + 1] <= '9') {
      ++i;
      if (!Digits(s, i, 2, v) || v < 1 || v > DaysInMonth(t.year, t.month)) return false;
      t.day = static_cast<std::int8_t>(v);
      t.precision = Precision::kDay;
    }
  }
  return true;
}

// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
long DaysFromCivil(long y, unsigned m, unsigned d) {
  y -= m <= 2;
  const long era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<long>(doe) - 719468;
}

void CivilFromDays(long z, Temporal& t) {
  z += 719468;
  const long era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const long y = static_cast<long>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  t.year = static_cast<std::int32_t>(y + (m <= 2));
  t.month = static_cast<std::int8_t>(m);
  t.day = static_cast<std::int8_t>(d);
}

long long EpochMs(const Temporal& t) {
  long days = DaysFromCivil(t.year, t.month, t.day);
  return ((static_cast<long long>(days) * 24 + t.hour) * 60 + t.minute) * 60000LL +
         t.second * 1000LL + t.millisecond;
}

void FromEpochMs(long long ms, Temporal& t) {
  long long days = ms >= 0 ? ms / 86400000LL : -((-ms + 86399999LL) / 86400000LL);
  long long rest = ms - days * 86400000LL;
  CivilFromDays(static_cast<long>(days), t);
  t.hour = static_cast<std::int8_t>(rest / 3600000);
  t.minute = static_cast<std::int8_t>(rest / 60000 % 60);
  t.second = static_cast<std::int8_t>(rest / 1000 % 60);
  t.millisecond = static_cast<std::int16_t>(rest % 1000);
}

}  // namespace

bool ParseDate(std::string_view s, Temporal& t) {
  t = Temporal();
  std::size_t i = 0;
  return ParseDatePart(s, i, t) && i == s.size();
}

bool ParseDateTime(std::string_view s, Temporal& t) {
  t = Temporal();
  std::size_t i = 0;
  if (!ParseDatePart(s, i, t)) return false;
  if (i < s.size() && s[i] == 'T') {
    ++i;
    if (i == s.size()) return true;  // "2015T"
    if (t.precision != Precision::kDay) return false;
    if (!ParseTimePart(s, i, t, true)) return false;
  }
  return i == s.size();
}

bool ParseTime(std::string_view s, Temporal& t) {
  t = Temporal();
  std::size_t i = 0;
  return ParseTimePart(s, i, t, false) && i == s.size();
}

bool ParseTemporalLiteral(std::string_view text, Value& out) {
  if (!text.empty() && text[0] == 'T') {
    out.kind = ValueKind::kTime;
    return ParseTime(text.substr(1), out.temporal);
  }
  bool has_t = text.find('T') != std::string_view::npos;
  out.kind = has_t ? ValueKind::kDateTime : ValueKind::kDate;
  return has_t ? ParseDateTime(text, out.temporal) : ParseDate(text, out.temporal);
}

std::string FormatTemporal(ValueKind kind, const Temporal& t) {
  char buf[64];
  std::string out;
  if (kind != ValueKind::kTime) {
    std::snprintf(buf, sizeof buf, "%04d", t.year);
    out = buf;
    if (t.precision >= Precision::kMonth)
      std::snprintf(buf, sizeof buf, "-%02d", t.month), out += buf;
    if (t.precision >= Precision::kDay) std::snprintf(buf, sizeof buf, "-%02d", t.day), out += buf;
    if (kind == ValueKind::kDate || t.precision <= Precision::kDay) return out;
    out += 'T';
  }
  std::snprintf(buf, sizeof buf, "%02d", t.hour);
  out += buf;
  if (t.precision >= Precision::kMinute)
    std::snprintf(buf, sizeof buf, ":%02d", t.minute), out += buf;
  if (t.precision >= Precision::kSecond)
    std::snprintf(buf, sizeof buf, ":%02d", t.second), out += buf;
  if (t.precision >= Precision::kMillisecond)
    std::snprintf(buf, sizeof buf, ".%03d", t.millisecond), out += buf;
  if (kind == ValueKind::kDateTime && t.has_tz) {
    if (t.tz_minutes == 0) {
      out += 'Z';
    } else {
      int m = std::abs(t.tz_minutes);
      std::snprintf(buf, sizeof buf, "%c%02d:%02d", t.tz_minutes < 0 ? '-' : '+', m / 60, m % 60);
      out += buf;
    }
  }
  return out;
}

std::optional<int> CompareTemporal(ValueKind kind, const Temporal& a0, const Temporal& b0) {
  Temporal a = a0, b = b0;
  // With both offsets known and time present, compare instants in UTC.
  if (kind == ValueKind::kDateTime && a.has_tz && b.has_tz && a.precision >= Precision::kHour &&
      b.precision >= Precision::kHour) {
    FromEpochMs(EpochMs(a) - a.tz_minutes * 60000LL, a);
    FromEpochMs(EpochMs(b) - b.tz_minutes * 60000LL, b);
  }
  // Seconds and milliseconds are one precision.
  auto norm = [](Precision p) { return p == Precision::kMillisecond ? Precision::kSecond : p; };
  Precision pa = norm(a.precision), pb = norm(b.precision);
  Precision common = std::min(pa, pb);
  long long fa[6], fb[6];
  auto fields = [](const Temporal& t, long long* f) {
    f[0] = t.year, f[1] = t.month, f[2] = t.day, f[3] = t.hour, f[4] = t.minute;
    f[5] = t.second * 1000LL + t.millisecond;
  };
  fields(a, fa);
  fields(b, fb);
  int first = kind == ValueKind::kTime ? 3 : 0;
  int last = static_cast<int>(common);
  for (int i = first; i <= last; ++i) {
    if (fa[i] != fb[i]) return fa[i] < fb[i] ? -1 : 1;
  }
  if (pa != pb) return std::nullopt;
  return 0;
}

bool AddToTemporal(ValueKind kind, Temporal& t, double amount, std::string_view unit) {
  long long n = static_cast<long long>(std::trunc(amount));
  if (unit == "year" || unit == "month") {
    if (kind == ValueKind::kTime) return false;
    long long months = unit == "year" ? n * 12 : n;
    if (t.precision == Precision::kYear) months = months / 12 * 12;
    long long total = static_cast<long long>(t.year) * 12 + (t.month - 1) + months;
    t.year = static_cast<std::int32_t>(total / 12);
    t.month = static_cast<std::int8_t>(total % 12 + 1);
    t.day = static_cast<std::int8_t>(std::min<int>(t.day, DaysInMonth(t.year, t.month)));
    return true;
  }
  long long ms;
  if (unit == "week")
    ms = n * 7 * 86400000LL;
  else if (unit == "day")
    ms = n * 86400000LL;
  else if (unit == "hour")
    ms = n * 3600000LL;
  else if (unit == "minute")
    ms = n * 60000LL;
  else if (unit == "second")
    ms = static_cast<long long>(std::llround(amount * 1000));
  else if (unit == "millisecond")
    ms = n;
  else
    return false;
  if (kind == ValueKind::kTime) {
    long long day = 86400000LL;
    long long cur = ((t.hour * 60LL + t.minute) * 60 + t.second) * 1000 + t.millisecond;
    cur = ((cur + ms) % day + day) % day;
    t.hour = static_cast<std::int8_t>(cur / 3600000);
    t.minute = static_cast<std::int8_t>(cur / 60000 % 60);
    t.second = static_cast<std::int8_t>(cur / 1000 % 60);
    t.millisecond = static_cast<std::int16_t>(cur % 1000);
    return true;
  }
  // Below the value's precision the addition is truncated to whole units of that precision.
  if (t.precision < Precision::kDay) {
    long long days = ms / 86400000LL;
    long long months = days / 30;
    if (t.precision == Precision::kYear) months = days / 365 * 12;
    return AddToTemporal(kind, t, static_cast<double>(months), "month");
  }
  FromEpochMs(EpochMs(t) + ms, t);
  return true;
}

Temporal NowUtc() {
  using namespace std::chrono;
  long long ms = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  Temporal t;
  FromEpochMs(ms, t);
  t.precision = Precision::kMillisecond;
  t.has_tz = true;
  return t;
}

}  // namespace topicbridge::fhirpath
