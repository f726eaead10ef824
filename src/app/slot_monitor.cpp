#include "slot_monitor.h"

#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

#include <algorithm>
#include <string>

namespace topicbridge {

SlotMonitor::SlotMonitor(std::string dsn, std::string slot, std::int64_t alarm_bytes,
                         std::chrono::milliseconds interval, ReplicationGauges* gauges)
    : dsn_(std::move(dsn)),
      slot_(std::move(slot)),
      alarm_bytes_(alarm_bytes),
      interval_(interval),
      gauges_(gauges) {
  gauges_->slot_lag_alarm_threshold_bytes = alarm_bytes_;
}

SlotMonitor::~SlotMonitor() { Stop(); }

void SlotMonitor::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void SlotMonitor::Stop() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void SlotMonitor::Loop() {
  std::unique_lock lock(mutex_);
  while (!stop_) {
    lock.unlock();
    PollOnce();
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stop_; });
  }
}

void SlotMonitor::PollOnce() {
  try {
    if (!connection_ || !connection_->is_open())
      connection_ = std::make_unique<pqxx::connection>(dsn_);
    pqxx::nontransaction tx(*connection_);
    const auto rows = tx.exec_params(
        "SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint FROM pg_replication_slots "
        "WHERE slot_name = $1 AND confirmed_flush_lsn IS NOT NULL",
        slot_);
    if (rows.empty()) return;  // not created yet
    const auto lag = rows[0][0].as<std::int64_t>();
    switch (gauges_->RecordSlotLag(lag)) {
      case SlotLagAlarmChange::kRaised:
        spdlog::warn(
            "slot {}: lag {} bytes is over slot_lag_alarm_bytes ({}): PostgreSQL keeps "
            "this WAL until topicbridge confirms it; check destinations' $status",
            slot_, lag, alarm_bytes_);
        break;
      case SlotLagAlarmChange::kCleared:
        spdlog::info("slot {}: lag back to {} bytes", slot_, lag);
        break;
      case SlotLagAlarmChange::kNone:
        break;
    }
  } catch (const std::exception& e) {
    // The replication side reports connection problems; here it is only a gauge.
    // libpq's text spans lines ("...refused\n\tIs the server running..."): one log line.
    std::string text = e.what();
    std::replace_if(text.begin(), text.end(), [](char c) { return c == '\n' || c == '\t'; }, ' ');
    while (!text.empty() && text.back() == ' ') text.pop_back();
    spdlog::debug("slot lag poll failed: {}", text);
    connection_.reset();
  }
}

}  // namespace topicbridge
