// SlotMonitor: polls the slot's lag on an ordinary (non-replication)
// connection, so that lag stays visible while the replication connection is
// down or blocked: pg_current_wal_lsn() - confirmed_flush_lsn, in bytes.
// Sets the slot_lag_alarm gauge while the lag is at or over the configured
// threshold, and warns once each time it crosses it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <pqxx/pqxx>
#include <string>
#include <thread>

#include "topicbridge/status_registry.h"

namespace topicbridge {

class SlotMonitor {
 public:
  SlotMonitor(std::string dsn, std::string slot, std::int64_t alarm_bytes,
              std::chrono::milliseconds interval, ReplicationGauges* gauges);
  ~SlotMonitor();  // stops and joins
  SlotMonitor(const SlotMonitor&) = delete;
  SlotMonitor& operator=(const SlotMonitor&) = delete;

  void Start();
  void Stop();

 private:
  void Loop();
  void PollOnce();

  std::string dsn_;
  std::string slot_;
  std::int64_t alarm_bytes_;
  std::chrono::milliseconds interval_;
  ReplicationGauges* gauges_;
  std::unique_ptr<pqxx::connection> connection_;  // used by the monitor thread only
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace topicbridge
