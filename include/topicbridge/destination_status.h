// DestinationStatus: the live counters of one AidboxTopicDestination, as its
// `$status` operation reports them. Counters are atomics so the pipeline, the
// broker libraries' callback threads and the HTTP server can touch them without
// a lock; only the ring of the five latest errors takes a mutex.
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace topicbridge {

// One entry of `lastErrorDetail`.
struct ErrorRecord {
  std::string message;    // never contains secrets (sinks scrub them)
  std::string timestamp;  // ISO-8601 UTC, e.g. "2026-11-25T15:54:16.123Z"
};

// A copy of the counters at one moment (each read is atomic on its own).
struct DestinationCounters {
  std::uint64_t delivered = 0;          // acknowledged (at-least-once) / handed over (best-effort)
  std::uint64_t lost = 0;               // best-effort: dropped or failed, never retried
  std::uint64_t delivery_attempts = 0;  // failed attempts (at-least-once retries them)
  std::int64_t queued = 0;              // waiting in topicbridge's own queue
  std::int64_t in_flight = 0;           // handed to the broker client, not yet completed
  std::uint64_t errors = 0;             // RecordError calls (the ring keeps only 5)
};

// Where a lost message was when it was given up.
enum class LostFrom { kNotQueued, kQueued, kInFlight };

class DestinationStatus {
 public:
  static constexpr std::size_t kErrorsKept = 5;

  // `kind` is the AidboxTopicDestination kind; `topic` is its topic url.
  // The start timestamp is taken now.
  DestinationStatus(std::string id, std::string kind, std::string topic);
  DestinationStatus(const DestinationStatus&) = delete;
  DestinationStatus& operator=(const DestinationStatus&) = delete;

  const std::string& id() const { return id_; }
  const std::string& kind() const { return kind_; }
  const std::string& topic() const { return topic_; }
  const std::string& start_timestamp() const { return start_timestamp_; }
  bool at_least_once() const { return at_least_once_; }

  // Lifecycle of one message: OnQueued → OnInFlight → OnDelivered
  //   | OnAttemptFailed (at-least-once: stays in flight, is retried)
  //   | OnLost (best-effort).
  void OnQueued() { queued_.fetch_add(1, std::memory_order_relaxed); }
  // Leaves the queue and is handed to the broker client (also: OnDequeued).
  void OnInFlight();
  void OnDequeued() { OnInFlight(); }
  void OnDelivered();
  // A failed attempt; the message stays in flight until delivered or lost.
  // Records `reason` in the error ring.
  void OnAttemptFailed(std::string_view reason);
  // Gives a message up (best-effort). Records `reason` in the error ring.
  void OnLost(std::string_view reason, LostFrom from = LostFrom::kInFlight);
  // An error not tied to one message (connection lost, permissions violation).
  void RecordError(std::string_view text);

  // Set by whoever owns the sink (for /readyz and /metrics).
  void SetConnected(bool connected) { connected_.store(connected, std::memory_order_relaxed); }
  bool Connected() const { return connected_.load(std::memory_order_relaxed); }

  DestinationCounters Counters() const;
  // Up to kErrorsKept errors, newest first.
  std::vector<ErrorRecord> LatestErrors() const;

 private:
  const std::string id_;
  const std::string kind_;
  const std::string topic_;
  const std::string start_timestamp_;
  const bool at_least_once_;

  std::atomic<std::uint64_t> delivered_{0};
  std::atomic<std::uint64_t> lost_{0};
  std::atomic<std::uint64_t> delivery_attempts_{0};
  std::atomic<std::int64_t> queued_{0};
  std::atomic<std::int64_t> in_flight_{0};
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<bool> connected_{false};

  mutable std::mutex errors_mutex_;
  std::deque<ErrorRecord> latest_errors_;  // front: newest; GUARDED_BY(errors_mutex_)
};

// The FHIR Parameters resource of `GET /fhir/AidboxTopicDestination/<id>/$status`,
// shaped as Aidbox documents it (counters as valueDecimal, parameters in the
// documented order). Best-effort kinds: messagesDelivered, messagesInProcess
// (queued + in flight: best-effort has no separate queue counter),
// messagesLost. At-least-once kinds: messagesDelivered,
// messagesDeliveryAttempts, messagesInProcess (in flight), messagesQueued.
// Both: startTimestamp, status ("active"), up to 5 lastErrorDetail (newest first).
std::string RenderStatusParameters(const DestinationStatus& status);

// "2026-11-25T15:54:16.123Z" for the current time.
std::string NowIso8601();

// True for nats-jetstream-at-least-once and kafka-at-least-once.
bool IsAtLeastOnceKind(std::string_view kind);

}  // namespace topicbridge
