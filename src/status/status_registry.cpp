#include "topicbridge/status_registry.h"

#include <chrono>

namespace topicbridge {

namespace {

std::int64_t UnixMillisNow() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

template <typename Counters>
std::vector<std::pair<std::string, const Counters*>> Snapshot(
    const std::map<std::string, std::unique_ptr<Counters>>& counters) {
  std::vector<std::pair<std::string, const Counters*>> out;
  out.reserve(counters.size());
  for (const auto& [name, value] : counters) out.emplace_back(name, value.get());
  return out;
}

}  // namespace

SlotLagAlarmChange ReplicationGauges::RecordSlotLag(std::int64_t lag_bytes) {
  slot_lag_bytes.store(lag_bytes, std::memory_order_relaxed);
  const std::int64_t threshold = slot_lag_alarm_threshold_bytes.load(std::memory_order_relaxed);
  const bool alarm = threshold > 0 && lag_bytes >= threshold;
  if (alarm == slot_lag_alarm.exchange(alarm, std::memory_order_relaxed)) {
    return SlotLagAlarmChange::kNone;
  }
  return alarm ? SlotLagAlarmChange::kRaised : SlotLagAlarmChange::kCleared;
}

void ReplicationGauges::MarkMessageReceived() {
  last_message_unix_ms.store(UnixMillisNow(), std::memory_order_relaxed);
}

double ReplicationGauges::SecondsSinceLastMessage() const {
  const std::int64_t last = last_message_unix_ms.load(std::memory_order_relaxed);
  if (last == 0) return -1;
  return static_cast<double>(UnixMillisNow() - last) / 1000.0;
}

StatusRegistry::StatusRegistry()
    : start_time_seconds_(static_cast<double>(UnixMillisNow()) / 1000.0) {}

DestinationStatus& StatusRegistry::AddDestination(const std::string& id, const std::string& kind,
                                                  const std::string& topic) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& destination : destinations_) {
    if (destination->id() == id) return *destination;
  }
  destinations_.push_back(std::make_unique<DestinationStatus>(id, kind, topic));
  return *destinations_.back();
}

DestinationStatus* StatusRegistry::FindDestination(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& destination : destinations_) {
    if (destination->id() == id) return destination.get();
  }
  return nullptr;
}

std::vector<DestinationStatus*> StatusRegistry::Destinations() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<DestinationStatus*> out;
  out.reserve(destinations_.size());
  for (const auto& destination : destinations_) out.push_back(destination.get());
  return out;
}

TopicCounters& StatusRegistry::Topic(const std::string& topic_url) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = topics_[topic_url];
  if (!slot) slot = std::make_unique<TopicCounters>();
  return *slot;
}

TableCounters& StatusRegistry::Table(const std::string& table_name) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto& slot = tables_[table_name];
  if (!slot) slot = std::make_unique<TableCounters>();
  return *slot;
}

std::vector<std::pair<std::string, const TopicCounters*>> StatusRegistry::Topics() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return Snapshot(topics_);
}

std::vector<std::pair<std::string, const TableCounters*>> StatusRegistry::Tables() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return Snapshot(tables_);
}

}  // namespace topicbridge
