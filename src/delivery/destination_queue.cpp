#include "topicbridge/destination_queue.h"

#include <algorithm>

namespace topicbridge {

DestinationQueue::DestinationQueue(Sink* sink, DestinationStatus* status, LsnTracker* tracker,
                                   DeliveryLimits limits)
    : sink_(sink),
      status_(status),
      tracker_(tracker),
      limits_(limits),
      backoff_(limits.initial_backoff) {
  if (tracker_ != nullptr) retry_thread_ = std::thread([this] { RetryLoop(); });
}

DestinationQueue::~DestinationQueue() {
  Stop();
  if (retry_thread_.joinable()) retry_thread_.join();
}

void DestinationQueue::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
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

bool DestinationQueue::Submit(OutboundMessage message, LsnTracker::Ticket ticket) {
  const std::size_t bytes = message.body.size();
  {
    std::unique_lock lock(mutex_);
    status_->OnQueued();
    changed_.wait(lock, [&] {
      return stopping_ ||
             (in_flight_ < limits_.max_in_flight &&
              (in_flight_ == 0 || in_flight_bytes_ + bytes <= limits_.max_in_flight_bytes));
    });
    if (stopping_) {
      status_->OnLost("stopped before publishing; the transaction will be replayed",
                      LostFrom::kQueued);
      return false;
    }
    ++in_flight_;
  }
  in_flight_bytes_ += bytes;
  tracker_->AddPending(ticket);
  status_->OnInFlight();
  Publish(std::make_shared<Pending>(Pending{std::move(message), ticket, {}}));
  return true;
}

void DestinationQueue::Publish(std::shared_ptr<Pending> pending) {
  OutboundMessage copy = pending->message;  // the original stays for a retry
  sink_->Publish(std::move(copy), [this, pending](const PublishResult& result) {
    if (!result.ok) {
      OnFailure(pending, result);
      return;
    }
    status_->OnDelivered();
    tracker_->Acknowledge(pending->ticket);
    {
      std::lock_guard lock(mutex_);
      backoff_ = limits_.initial_backoff;
    }
    Finish(pending->message.body.size());
  });
}

void DestinationQueue::OnFailure(std::shared_ptr<Pending> pending, const PublishResult& result) {
  status_->OnAttemptFailed(result.error);
  {
    std::lock_guard lock(mutex_);
    pending->due = std::chrono::steady_clock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, limits_.max_backoff);
    retries_.push_back(std::move(pending));
  }
  changed_.notify_all();
}

void DestinationQueue::RetryLoop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (retries_.empty()) {
      changed_.wait(lock);
      continue;
    }
    auto due = retries_.front()->due;
    if (std::chrono::steady_clock::now() < due) {
      changed_.wait_until(lock, due);
      continue;
    }
    auto pending = std::move(retries_.front());
    retries_.pop_front();
    lock.unlock();
    Publish(std::move(pending));
    lock.lock();
  }
}

bool DestinationQueue::Drain(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return in_flight_ == 0; });
}

}  // namespace topicbridge
