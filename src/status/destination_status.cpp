#include "topicbridge/destination_status.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <chrono>
#include <ctime>

namespace topicbridge {

std::string NowIso8601() {
  const auto now = std::chrono::system_clock::now();
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::time_t seconds = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>(ms));
  return text;
}

bool IsAtLeastOnceKind(std::string_view kind) {
  return kind.size() >= 14 && kind.substr(kind.size() - 14) == "-at-least-once";
}

DestinationStatus::DestinationStatus(std::string id, std::string kind, std::string topic)
    : id_(std::move(id)),
      kind_(std::move(kind)),
      topic_(std::move(topic)),
      start_timestamp_(NowIso8601()),
      at_least_once_(IsAtLeastOnceKind(kind_)) {}

void DestinationStatus::OnInFlight() {
  queued_.fetch_sub(1, std::memory_order_relaxed);
  in_flight_.fetch_add(1, std::memory_order_relaxed);
}

void DestinationStatus::OnDelivered() {
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  delivered_.fetch_add(1, std::memory_order_relaxed);
}

void DestinationStatus::OnAttemptFailed(std::string_view reason) {
  delivery_attempts_.fetch_add(1, std::memory_order_relaxed);
  RecordError(reason);
}

void DestinationStatus::OnLost(std::string_view reason, LostFrom from) {
  if (from == LostFrom::kQueued) queued_.fetch_sub(1, std::memory_order_relaxed);
  if (from == LostFrom::kInFlight) in_flight_.fetch_sub(1, std::memory_order_relaxed);
  lost_.fetch_add(1, std::memory_order_relaxed);
  RecordError(reason);
}

void DestinationStatus::RecordError(std::string_view text) {
  errors_.fetch_add(1, std::memory_order_relaxed);
  ErrorRecord record{std::string(text), NowIso8601()};
  std::lock_guard<std::mutex> lock(errors_mutex_);
  latest_errors_.push_front(std::move(record));
  if (latest_errors_.size() > kErrorsKept) latest_errors_.pop_back();
}

DestinationCounters DestinationStatus::Counters() const {
  DestinationCounters c;
  c.delivered = delivered_.load(std::memory_order_relaxed);
  c.lost = lost_.load(std::memory_order_relaxed);
  c.delivery_attempts = delivery_attempts_.load(std::memory_order_relaxed);
  // Gauges are moved by different threads in separate steps: never show a
  // transiently negative value.
  c.queued = std::max<std::int64_t>(0, queued_.load(std::memory_order_relaxed));
  c.in_flight = std::max<std::int64_t>(0, in_flight_.load(std::memory_order_relaxed));
  c.errors = errors_.load(std::memory_order_relaxed);
  return c;
}

std::vector<ErrorRecord> DestinationStatus::LatestErrors() const {
  std::lock_guard<std::mutex> lock(errors_mutex_);
  return {latest_errors_.begin(), latest_errors_.end()};
}

namespace {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteDecimal(JsonWriter& w, const char* name, std::uint64_t value) {
  w.StartObject();
  w.Key("name");
  w.String(name);
  w.Key("valueDecimal");
  w.Uint64(value);
  w.EndObject();
}

void WriteNamed(JsonWriter& w, const char* name, const char* value_type, const std::string& value) {
  w.StartObject();
  w.Key("name");
  w.String(name);
  w.Key(value_type);
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  w.EndObject();
}

void WriteErrorDetail(JsonWriter& w, const ErrorRecord& error) {
  w.StartObject();
  w.Key("name");
  w.String("lastErrorDetail");
  w.Key("part");
  w.StartArray();
  WriteNamed(w, "message", "valueString", error.message);
  WriteNamed(w, "timestamp", "valueDateTime", error.timestamp);
  w.EndArray();
  w.EndObject();
}

}  // namespace

std::string RenderStatusParameters(const DestinationStatus& status) {
  const DestinationCounters c = status.Counters();
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("resourceType");
  w.String("Parameters");
  w.Key("parameter");
  w.StartArray();
  WriteDecimal(w, "messagesDelivered", c.delivered);
  if (status.at_least_once()) {
    WriteDecimal(w, "messagesDeliveryAttempts", c.delivery_attempts);
    WriteDecimal(w, "messagesInProcess", static_cast<std::uint64_t>(c.in_flight));
    WriteDecimal(w, "messagesQueued", static_cast<std::uint64_t>(c.queued));
  } else {
    WriteDecimal(w, "messagesInProcess", static_cast<std::uint64_t>(c.in_flight + c.queued));
    WriteDecimal(w, "messagesLost", c.lost);
  }
  WriteNamed(w, "startTimestamp", "valueDateTime", status.start_timestamp());
  WriteNamed(w, "status", "valueString", "active");
  for (const ErrorRecord& error : status.LatestErrors()) WriteErrorDetail(w, error);
  w.EndArray();
  w.EndObject();
  return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace topicbridge
