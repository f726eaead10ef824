// DestinationQueue: the delivery policy of one destination in front of its Sink.
//
// best-effort: Offer() never blocks; when `max_in_flight` messages are already
// with the broker client, the message is counted lost. Failures are lost.
// at-least-once: Submit() blocks the caller (the replication reader: TCP
// back-pressure to PostgreSQL) while the in-flight window (messages or bytes)
// is full, calling its wait hook every `wait_tick` so the reader can keep its
// connection alive. Only an acknowledgement reaches the LsnTracker. After a
// failed publish the destination is "unhealthy": new messages join the failed
// ones in a retry queue kept in submission order, and one message (the oldest)
// probes the broker per backoff period (capped exponential, forever; at once
// when the sink reports its connection back); the first success resends the
// rest in order. So messages reach the broker in submission
// order except those already in flight when the first failure happened.
// Thread-safety: Offer/Submit from the pipeline thread; completions arrive on
// broker threads; retries run on the queue's own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
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
  std::chrono::milliseconds max_backoff{10000};
  std::chrono::milliseconds wait_tick{1000};  // Submit calls its wait hook this often
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
  // Called by a blocked Submit every `wait_tick`, on the submitting thread,
  // without the queue's lock. Returns false to give up waiting.
  using WaitHook = std::function<bool()>;

  // at-least-once path. Returns false when Stop() or the hook ended the wait:
  // the message was not taken and `ticket` keeps one pending message that is
  // never acknowledged, so its transaction is never confirmed by this process
  // (the caller stops or drops the transaction with AbortOpenTransaction).
  bool Submit(OutboundMessage message, LsnTracker::Ticket ticket,
              const WaitHook& while_waiting = {});

  // Waits up to `timeout` for every in-flight message to complete.
  // True when nothing is in flight any more.
  bool Drain(std::chrono::milliseconds timeout);
  // Stops retrying and wakes a blocked Submit. Idempotent; any thread.
  void Stop();
  // Stop(), then waits for the retry thread: afterwards nothing calls the sink
  // any more, while completions of messages still in flight remain welcome (so
  // destroy the sink, which completes them, before the queue).
  // REQUIRES: not called from a completion callback.
  void Close();

  std::size_t in_flight() const { return in_flight_.load(); }

 private:
  struct Pending {
    OutboundMessage message;
    LsnTracker::Ticket ticket;
    std::uint64_t sequence;  // submission order
    bool probe = false;      // sent alone to test an unhealthy broker
  };
  bool HasRoom(std::size_t bytes) const;  // REQUIRES: mutex_ held
  void Publish(std::shared_ptr<Pending> pending);
  void OnSuccess(const Pending& pending);
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
  // Failed or deferred messages by sequence: resent in submission order.
  std::map<std::uint64_t, std::shared_ptr<Pending>> retries_;  // GUARDED_BY(mutex_)
  std::uint64_t next_sequence_ = 0;                            // GUARDED_BY(mutex_)
  bool healthy_ = true;     // the latest completion succeeded; GUARDED_BY(mutex_)
  bool probing_ = false;    // a probe awaits its completion; GUARDED_BY(mutex_)
  bool resending_ = false;  // RetryLoop is handing a retry to the sink; GUARDED_BY(mutex_)
  // The sink's connection was up at the last failure; when it was down, the
  // next probe goes as soon as it is up again. GUARDED_BY(mutex_)
  bool connected_at_failure_ = true;
  std::chrono::steady_clock::time_point next_retry_;  // GUARDED_BY(mutex_)
  std::chrono::milliseconds backoff_;                 // GUARDED_BY(mutex_)
  std::thread retry_thread_;
};

}  // namespace topicbridge
