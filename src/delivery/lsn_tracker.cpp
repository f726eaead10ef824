#include "topicbridge/lsn_tracker.h"

#include <iterator>

namespace topicbridge {

LsnTracker::Ticket LsnTracker::BeginTransaction() {
  std::lock_guard lock(mutex_);
  open_ = next_ticket_++;
  transactions_.emplace(open_, Transaction{});
  return open_;
}

void LsnTracker::AddPending(Ticket ticket) {
  std::lock_guard lock(mutex_);
  if (auto it = transactions_.find(ticket); it != transactions_.end()) {
    ++it->second.pending;
    ++pending_;
  }
}

void LsnTracker::Acknowledge(Ticket ticket) {
  std::lock_guard lock(mutex_);
  auto it = transactions_.find(ticket);
  if (it == transactions_.end() || it->second.pending == 0) return;
  --it->second.pending;
  --pending_;
  Advance();
}

void LsnTracker::CommitTransaction(Ticket ticket, Lsn end_lsn) {
  std::lock_guard lock(mutex_);
  if (auto it = transactions_.find(ticket); it != transactions_.end()) {
    it->second.end_lsn = end_lsn;
    // A finished transaction right before a finished one can only ever be
    // confirmed together with it: forget it, so that transactions without
    // at-least-once work behind a stuck one cost no memory.
    if (it->second.pending == 0 && it != transactions_.begin()) {
      if (auto before = std::prev(it); before->second.end_lsn != 0 && before->second.pending == 0)
        transactions_.erase(before);
    }
  }
  if (open_ == ticket) open_ = 0;
  Advance();
}

void LsnTracker::AbortOpenTransaction() {
  std::lock_guard lock(mutex_);
  if (open_ == 0) return;
  if (auto it = transactions_.find(open_); it != transactions_.end()) {
    pending_ -= it->second.pending;
    transactions_.erase(it);
  }
  open_ = 0;
  Advance();
}

void LsnTracker::Advance() {
  while (!transactions_.empty()) {
    const auto& front = transactions_.begin()->second;
    if (front.end_lsn == 0 || front.pending != 0) break;
    if (front.end_lsn > confirmable_) confirmable_ = front.end_lsn;
    transactions_.erase(transactions_.begin());
  }
}

Lsn LsnTracker::Confirmable() {
  std::lock_guard lock(mutex_);
  return confirmable_;
}

bool LsnTracker::Idle() {
  std::lock_guard lock(mutex_);
  return transactions_.empty();
}

bool LsnTracker::InTransaction() {
  std::lock_guard lock(mutex_);
  return open_ != 0;
}

std::uint64_t LsnTracker::Pending() {
  std::lock_guard lock(mutex_);
  return pending_;
}

std::size_t LsnTracker::Held() {
  std::lock_guard lock(mutex_);
  return transactions_.size();
}

}  // namespace topicbridge
