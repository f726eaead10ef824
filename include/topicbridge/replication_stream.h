// ReplicationStream: one logical replication connection (libpq, replication=database) reading
// wal2json format-version 2 messages from a slot, answering keepalives and sending the confirmed
// flush LSN back as standby status updates. Invariant: the LSN reported to the server is only
// ever one the caller passed to Confirm() (or, with ConfirmIdle(), a keepalive position past
// everything delivered), and it never moves backwards.
// Threading: Connect/Next/ConfirmIdle/Close on one thread (the pipeline thread); Confirm() and
// the getters may be called from any thread. Not copyable.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "topicbridge/lsn.h"

namespace topicbridge {

struct ReplicationOptions {
  std::string dsn;  // libpq keyword/value string or URI; replication=database is added
  std::string slot = "topicbridge";
  // wal2json add-tables entries, "schema.table" (wal2json's "*" wildcards allowed). Empty: all.
  std::vector<std::string> tables;
  std::chrono::milliseconds status_interval{1000};  // standby status update period
  std::chrono::milliseconds backoff_initial{500};   // ConnectWithBackoff: first wait
  std::chrono::milliseconds backoff_max{30000};     // ... doubled up to this cap
  // Called with the message of each failed Connect() (ConnectWithBackoff's attempts included),
  // on the connecting thread; e.g. to tell /readyz why. Empty: not called.
  std::function<void(const std::string&)> on_connect_failure;
};

// Outcome of Connect() and Next(). `message` says what happened and what to do; it is empty
// for kOk and kTimeout (no allocation on the hot path).
struct ReplicationStatus {
  enum Code {
    kOk,            // Connect: streaming. Next: *message holds one wal2json message.
    kTimeout,       // Next: nothing arrived within the timeout; the stream is still fine.
    kDisconnected,  // the connection is gone (server ended it, network, stop): Connect again.
    kError,         // Connect failed; see `permanent`.
  };
  Code code = kOk;
  std::string message;
  // Connect: retrying cannot help until someone changes the server or the configuration
  // (wrong password, wal_level, plugin not installed or not allowed, slot of another kind...).
  bool permanent = false;

  bool ok() const { return code == kOk; }
};

// From IDENTIFY_SYSTEM at the last successful Connect().
struct ServerIdentity {
  std::string system_id;
  int timeline = 0;
  Lsn wal_position = 0;
  std::string database;
};

class ReplicationStream {
 public:
  explicit ReplicationStream(ReplicationOptions options);
  ~ReplicationStream();  // Close()
  ReplicationStream(const ReplicationStream&) = delete;
  ReplicationStream& operator=(const ReplicationStream&) = delete;

  // Connects, checks wal_level, creates the slot (plugin wal2json) if missing, checks an
  // existing one (logical, wal2json, this database, not active elsewhere) and starts streaming
  // from it. Starts at confirmed() when that is past the slot's position (a reconnect of this
  // object), else where the slot stands. Callable again after kDisconnected. Blocking; an
  // active slot is waited for up to 1 s (5 s when its walsender was ours), since a walsender
  // releases the slot only just after its client has gone.
  ReplicationStatus Connect();

  // Connect() until it succeeds or `stop` becomes true, waiting backoff_initial, doubling up to
  // backoff_max between attempts. A failure is logged (spdlog warn) when it differs from the
  // last one logged, else once a minute (debug in between). Returns the last failure when
  // stopped.
  ReplicationStatus ConnectWithBackoff(const std::atomic<bool>& stop);

  // Waits up to `timeout` (0: only what has already arrived) for the next XLogData message.
  // kOk: *message is one wal2json message, valid only until the next Next(), Connect() or
  // Close(). kTimeout: nothing yet. kDisconnected: the connection is gone (or was never made).
  // Keepalives are answered and status updates sent from here, so call it at least every
  // status_interval.
  ReplicationStatus Next(std::string_view* message, std::chrono::milliseconds timeout);

  // The caller has durably handled everything up to `flushed` (a C record's next_lsn). Sent at
  // the next status update. Lower values than confirmed() are ignored. Any thread.
  void Confirm(Lsn flushed);

  // The caller has no pending work for anything Next() delivered so far, and is not inside a
  // transaction (the last message delivered, if any, was a C). Until Next() delivers another
  // message, keepalives may advance confirmed() to the server's WAL end, so WAL that produces
  // no output for us (other databases, filtered tables) is not held by the slot.
  void ConfirmIdle();

  // Sends a standby status update now (Next() does this periodically). kDisconnected on error.
  ReplicationStatus SendStatus(bool reply_requested = false);

  Lsn confirmed() const { return confirmed_.load(std::memory_order_acquire); }
  Lsn last_received() const { return last_received_.load(std::memory_order_relaxed); }
  // The server's WAL end from the latest XLogData or keepalive: confirmed() lag is its distance.
  Lsn server_wal_end() const { return server_wal_end_.load(std::memory_order_relaxed); }
  // When the server last sent anything (message or keepalive).
  std::chrono::steady_clock::time_point last_message_time() const;
  bool connected() const { return connected_.load(std::memory_order_acquire); }
  // True when the last Connect() created the slot.
  bool slot_created() const { return slot_created_; }
  const ServerIdentity& identity() const { return identity_; }
  const ReplicationOptions& options() const { return options_; }

  // Sends a final status update (best effort) and closes the connection. Idempotent.
  void Close();

 private:
  struct Connection;

  ReplicationStatus ConnectOnce();
  ReplicationStatus EnsureSlot();
  ReplicationStatus StartReplication();
  ReplicationStatus Explained(std::string_view step, std::string_view server_text);
  ReplicationStatus HandleKeepalive(const char* data);
  ReplicationStatus WaitForInput(std::chrono::steady_clock::time_point until);
  ReplicationStatus Lost(std::string_view what);  // drops the connection, returns kDisconnected
  void Drop();
  void AdvanceConfirmed(Lsn lsn);

  ReplicationOptions options_;
  std::unique_ptr<Connection> connection_;
  ServerIdentity identity_;
  bool slot_created_ = false;
  int previous_backend_pid_ = 0;  // our last walsender, which may linger after a drop
  bool idle_ = false;             // ConfirmIdle() and no message delivered since
  Lsn keepalive_end_ = 0;         // wal_end of a keepalive received since the last message
  std::chrono::steady_clock::time_point next_status_;
  std::atomic<Lsn> confirmed_{0};
  std::atomic<Lsn> last_received_{0};
  std::atomic<Lsn> server_wal_end_{0};
  std::atomic<std::int64_t> last_message_ns_{0};  // steady_clock, for last_message_time()
  std::atomic<bool> connected_{false};
};

}  // namespace topicbridge
