// DestinationQueue: the delivery policy of one destination in front of its Sink.
//
// best-effort: Offer() never blocks; when `max_in_flight` messages are already
// with the broker client, the message is counted lost. Failures are lost.
// at-least-once: Submit() blocks the caller (the replication reader: TCP
// back-pressure to PostgreSQL) while the in-flight window (messages or bytes)
// is full; a failed publish is retried with capped exponential backoff,
// forever, and only an acknowledgement reaches the LsnTracker.
// Thread-safety: Offer/Submit from the pipeline thread; completions arrive on
// broker threads; retries run on the queue's own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "topicbridge/destination_status.h"
#include "topicbridge/lsn_tracker.h"
#include "topicbridge/sink.h"

namespace topicbridge {

struct DeliveryLimits {
  std::size_t max_in_flight = 10000;
  std::size_t max_in_flight_bytes = 64u << 20;
  std::chrono::milliseconds initial_backoff{200};
  std::chrono::milliseconds max_backoff{30000};
};

class DestinationQueue {
 public:
  // `tracker` may be null for best-effort destinations. The queue does not
  // own `sink`, `status` or `tracker`; they must outlive it.
  DestinationQueue(Sink* sink, DestinationStatus* status, LsnTracker* tracker,
                   DeliveryLimits limits);
  ~DestinationQueue();
  DestinationQueue(const DestinationQueue&) = delete;
  DestinationQueue& operator=(const DestinationQueue&) = delete;

  bool at_least_once() const { return tracker_ != nullptr; }

  // best-effort path.
  void Offer(OutboundMessage message);
  // at-least-once path. Returns false only when Stop() interrupted the wait
  // (the message was not taken; the transaction will be replayed).
  bool Submit(OutboundMessage message, LsnTracker::Ticket ticket);

  // Waits up to `timeout` for every in-flight message to complete.
  // True when nothing is in flight any more.
  bool Drain(std::chrono::milliseconds timeout);
  // Stops retrying and wakes a blocked Submit. Idempotent.
  void Stop();

  std::size_t in_flight() const { return in_flight_.load(); }

 private:
  struct Pending {
    OutboundMessage message;
    LsnTracker::Ticket ticket;
    std::chrono::steady_clock::time_point due;
  };
  void Publish(std::shared_ptr<Pending> pending);
  void OnFailure(std::shared_ptr<Pending> pending, const PublishResult& result);
  void Finish(std::size_t bytes);
  void RetryLoop();

  Sink* sink_;
  DestinationStatus* status_;
  LsnTracker* tracker_;
  DeliveryLimits limits_;

  std::atomic<std::size_t> in_flight_{0};
  std::atomic<std::size_t> in_flight_bytes_{0};
  std::atomic<bool> stopping_{false};

  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<std::shared_ptr<Pending>> retries_;  // GUARDED_BY(mutex_)
  std::chrono::milliseconds backoff_;             // GUARDED_BY(mutex_)
  std::thread retry_thread_;
};

}  // namespace topicbridge
