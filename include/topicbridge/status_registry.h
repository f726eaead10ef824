// StatusRegistry: every counter the process exposes — per destination, per
// topic, per table, and the replication gauges — in one place that /metrics and
// $status read. Registered objects live as long as the registry and never move,
// so callers look them up once and keep the reference; all counters are atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "topicbridge/destination_status.h"

namespace topicbridge {

struct TopicCounters {
  std::atomic<std::uint64_t> events_matched{0};   // notifications this topic produced
  std::atomic<std::uint64_t> fhirpath_errors{0};  // criteria that failed to evaluate
};

struct TableCounters {
  std::atomic<std::uint64_t> changes_decoded{0};
};

// What one slot lag measurement did to the alarm.
enum class SlotLagAlarmChange { kNone, kRaised, kCleared };

struct ReplicationGauges {
  std::atomic<std::int64_t> slot_lag_bytes{0};  // pg_current_wal_lsn() - confirmed_flush_lsn
  std::atomic<std::int64_t> slot_lag_alarm_threshold_bytes{0};  // postgres.slot_lag_alarm_bytes
  std::atomic<bool> slot_lag_alarm{false};            // lag >= threshold (threshold 0: never)
  std::atomic<std::uint64_t> last_received_lsn{0};    // Lsn
  std::atomic<std::uint64_t> last_confirmed_lsn{0};   // Lsn sent as flush position
  std::atomic<std::int64_t> last_message_unix_ms{0};  // 0: nothing received yet
  std::atomic<std::uint64_t> reconnects{0};
  std::atomic<bool> connected{false};
  // Changes that could not be decoded or turned into an event (logged with their LSN).
  std::atomic<std::uint64_t> changes_unprocessable{0};
  // True while the stream is halted before such a change that an at-least-once
  // destination could have wanted (see docs/operations.md, "Faults and what happens").
  std::atomic<bool> halted{false};

  // Stores a lag measurement and sets slot_lag_alarm against the threshold.
  // REQUIRES: one caller at a time (the slot monitor).
  SlotLagAlarmChange RecordSlotLag(std::int64_t lag_bytes);
  // Call for every message from the server (data or keepalive).
  void MarkMessageReceived();
  // -1 when nothing has been received yet.
  double SecondsSinceLastMessage() const;
};

class StatusRegistry {
 public:
  StatusRegistry();
  StatusRegistry(const StatusRegistry&) = delete;
  StatusRegistry& operator=(const StatusRegistry&) = delete;

  // Registers a destination (or returns the existing one with that id).
  DestinationStatus& AddDestination(const std::string& id, const std::string& kind,
                                    const std::string& topic);
  // nullptr when unknown.
  DestinationStatus* FindDestination(const std::string& id) const;
  // In registration order.
  std::vector<DestinationStatus*> Destinations() const;

  // Get-or-create; keep the reference instead of calling per event.
  TopicCounters& Topic(const std::string& topic_url);
  TableCounters& Table(const std::string& table_name);

  ReplicationGauges& replication() { return replication_; }
  const ReplicationGauges& replication() const { return replication_; }

  // Wall-clock start of the process, unix seconds.
  double start_time_seconds() const { return start_time_seconds_; }

  // Snapshots for rendering: (name, counters) sorted by name.
  std::vector<std::pair<std::string, const TopicCounters*>> Topics() const;
  std::vector<std::pair<std::string, const TableCounters*>> Tables() const;

 private:
  mutable std::mutex mutex_;  // guards the containers, not the counters
  std::vector<std::unique_ptr<DestinationStatus>> destinations_;
  std::map<std::string, std::unique_ptr<TopicCounters>> topics_;
  std::map<std::string, std::unique_ptr<TableCounters>> tables_;
  ReplicationGauges replication_;
  double start_time_seconds_;
};

}  // namespace topicbridge
