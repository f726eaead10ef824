#include "topicbridge/destination_queue.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace topicbridge {

namespace {
using Clock = std::chrono::steady_clock;
// How often a backing-off queue looks whether its sink reconnected.
constexpr std::chrono::milliseconds kConnectionPoll{100};
}  // namespace

DestinationQueue::DestinationQueue(Sink* sink, DestinationStatus* status, LsnTracker* tracker,
                                   DeliveryLimits limits)
    : sink_(sink),
      status_(status),
      tracker_(tracker),
      limits_(limits),
      backoff_(limits.initial_backoff) {
  if (tracker_ != nullptr) retry_thread_ = std::thread([this] { RetryLoop(); });
}

DestinationQueue::~DestinationQueue() { Close(); }

void DestinationQueue::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
}

void DestinationQueue::Close() {
  Stop();
  if (retry_thread_.joinable()) retry_thread_.join();
}

void DestinationQueue::Finish(std::size_t bytes) {
  in_flight_bytes_ -= bytes;
  {
    // Under the mutex so that a waiter cannot miss the wake-up.
    std::lock_guard lock(mutex_);
    --in_flight_;
  }
  changed_.notify_all();
}

void DestinationQueue::Offer(OutboundMessage message) {
  if (in_flight_ >= limits_.max_in_flight ||
      in_flight_bytes_ + message.body.size() > limits_.max_in_flight_bytes) {
    status_->OnLost("best-effort queue full (" + std::to_string(limits_.max_in_flight) +
                        " messages in flight): message dropped",
                    LostFrom::kNotQueued);
    return;
  }
  const std::size_t bytes = message.body.size();
  ++in_flight_;
  in_flight_bytes_ += bytes;
  status_->OnQueued();
  status_->OnInFlight();
  sink_->Publish(std::move(message), [this, bytes](const PublishResult& result) {
    if (result.ok)
      status_->OnDelivered();
    else
      status_->OnLost(result.error);
    Finish(bytes);
  });
}

bool DestinationQueue::HasRoom(std::size_t bytes) const {
  return in_flight_ < limits_.max_in_flight &&
         (in_flight_ == 0 || in_flight_bytes_ + bytes <= limits_.max_in_flight_bytes);
}

bool DestinationQueue::Submit(OutboundMessage message, LsnTracker::Ticket ticket,
                              const WaitHook& while_waiting) {
  const std::size_t bytes = message.body.size();
  // Before the message can be acknowledged; if it is not taken below, this
  // pending message is never acknowledged and holds its transaction back.
  tracker_->AddPending(ticket);
  status_->OnQueued();
  auto pending = std::make_shared<Pending>(Pending{std::move(message), ticket, 0});
  bool publish_now = false;
  {
    std::unique_lock lock(mutex_);
    bool given_up = false;
    while (!stopping_ && !HasRoom(bytes) && !given_up) {
      if (changed_.wait_for(lock, limits_.wait_tick, [&] { return stopping_ || HasRoom(bytes); }))
        break;
      if (while_waiting) {
        lock.unlock();
        given_up = !while_waiting();
        lock.lock();
      }
    }
    if (stopping_ || given_up) {
      lock.unlock();
      status_->OnLost("not published: stopping or reconnecting; the transaction will be replayed",
                      LostFrom::kQueued);
      return false;
    }
    ++in_flight_;
    in_flight_bytes_ += bytes;
    status_->OnInFlight();  // before RetryLoop may publish it
    pending->sequence = next_sequence_++;
    // While earlier messages wait for a retry, this one waits behind them.
    publish_now = retries_.empty() && !probing_ && !resending_;
    if (!publish_now) retries_.emplace(pending->sequence, pending);
  }
  if (publish_now)
    Publish(std::move(pending));
  else
    changed_.notify_all();
  return true;
}

void DestinationQueue::Publish(std::shared_ptr<Pending> pending) {
  OutboundMessage copy = pending->message;  // the original stays for a retry
  sink_->Publish(std::move(copy), [this, pending](const PublishResult& result) {
    if (result.ok)
      OnSuccess(*pending);
    else
      OnFailure(pending, result);
  });
}

void DestinationQueue::OnSuccess(const Pending& pending) {
  status_->OnDelivered();
  tracker_->Acknowledge(pending.ticket);
  bool recovered = false;
  std::size_t waiting = 0;
  {
    std::lock_guard lock(mutex_);
    if (pending.probe) probing_ = false;
    recovered = !healthy_;
    waiting = retries_.size();
    healthy_ = true;
    backoff_ = limits_.initial_backoff;
    next_retry_ = Clock::now();  // the broker is back: resend what waits, in order
  }
  if (recovered)
    spdlog::info("destination {}: publishing again; resending {} waiting messages in order",
                 status_->id(), waiting);
  Finish(pending.message.body.size());
}

void DestinationQueue::OnFailure(std::shared_ptr<Pending> pending, const PublishResult& result) {
  status_->OnAttemptFailed(result.error);
  // Logged when the destination turns unhealthy and once per failed probe, not per message.
  bool log = false;
  std::chrono::milliseconds wait{0};
  {
    std::lock_guard lock(mutex_);
    if (pending->probe) {
      probing_ = false;
      backoff_ = std::min(backoff_ * 2, limits_.max_backoff);
      next_retry_ = Clock::now() + backoff_;
    } else if (healthy_) {
      next_retry_ = Clock::now() + backoff_;
    }
    log = pending->probe || healthy_;
    connected_at_failure_ = status_->Connected();
    wait = backoff_;
    healthy_ = false;
    pending->probe = false;
    retries_.emplace(pending->sequence, std::move(pending));
  }
  changed_.notify_all();
  if (log)
    spdlog::warn("destination {}: publish failed, retrying in {} ms (messages wait in order): {}",
                 status_->id(), wait.count(), result.error);
}

void DestinationQueue::RetryLoop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (retries_.empty() || probing_) {
      changed_.wait(lock);
      continue;
    }
    if (const auto now = Clock::now(); now < next_retry_) {
      if (connected_at_failure_) {
        changed_.wait_until(lock, next_retry_);
      } else if (status_->Connected()) {
        next_retry_ = now;  // the connection came back since the failure: probe now
      } else {
        changed_.wait_until(lock, std::min(next_retry_, now + kConnectionPoll));
      }
      continue;
    }
    auto pending = std::move(retries_.begin()->second);
    retries_.erase(retries_.begin());
    // Unhealthy: one message at a time tests the broker until one succeeds.
    pending->probe = !healthy_;
    probing_ = pending->probe;
    resending_ = true;
    lock.unlock();
    Publish(std::move(pending));
    lock.lock();
    resending_ = false;
  }
}

bool DestinationQueue::Drain(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return in_flight_ == 0; });
}

}  // namespace topicbridge
