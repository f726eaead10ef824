// LsnTracker: decides which LSN may be confirmed to PostgreSQL.
// Invariant: the confirmed LSN never passes a transaction that still has an
// unacknowledged at-least-once notification, nor any transaction before it.
// Transactions with no at-least-once work confirm as soon as the earlier ones
// have. Thread-safety: Acknowledge() may be called from any thread (broker
// callbacks); the other methods belong to the pipeline thread.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>

#include "topicbridge/lsn.h"

namespace topicbridge {

class LsnTracker {
 public:
  using Ticket = std::uint64_t;

  LsnTracker() = default;
  LsnTracker(const LsnTracker&) = delete;
  LsnTracker& operator=(const LsnTracker&) = delete;

  // At a B record. REQUIRES: no transaction open.
  Ticket BeginTransaction();
  // One more at-least-once message of `ticket` awaits its acknowledgement.
  // REQUIRES: `ticket` is the open transaction.
  void AddPending(Ticket ticket);
  // The broker acknowledged one message of `ticket`. Unknown tickets (of a
  // transaction dropped by AbortOpenTransaction) are ignored.
  void Acknowledge(Ticket ticket);
  // At the C record: `end_lsn` is its nextlsn, the position to confirm.
  void CommitTransaction(Ticket ticket, Lsn end_lsn);
  // The replication connection dropped mid-transaction: PostgreSQL will send
  // it again, so the open one is forgotten.
  void AbortOpenTransaction();

  // The newest LSN that may be confirmed; never decreases.
  Lsn Confirmable();
  // True when nothing is open or awaiting acknowledgement: the stream may
  // then confirm the server's keepalive position.
  bool Idle();
  // True between a B record and its C record.
  bool InTransaction();
  // Messages awaiting acknowledgement, over all transactions.
  std::uint64_t Pending();
  // Transactions held back (open, or committed and not yet confirmable).
  // Finished ones directly behind each other count once.
  std::size_t Held();

 private:
  struct Transaction {
    Lsn end_lsn = 0;  // 0 until committed
    std::uint64_t pending = 0;
  };
  void Advance();  // REQUIRES: mutex_ held

  std::mutex mutex_;
  std::map<Ticket, Transaction> transactions_;  // in commit order
  Ticket next_ticket_ = 1;
  Ticket open_ = 0;
  Lsn confirmable_ = 0;
  std::uint64_t pending_ = 0;
};

}  // namespace topicbridge
