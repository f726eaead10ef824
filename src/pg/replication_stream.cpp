// ReplicationStream over libpq's COPY BOTH. Wire formats (PostgreSQL protocol, big-endian):
//   XLogData         'w' Int64 data_start, Int64 wal_end, Int64 send_time, payload
//   Keepalive        'k' Int64 wal_end, Int64 send_time, Byte1 reply_requested
//   Status update    'r' Int64 written, Int64 flushed, Int64 applied, Int64 send_time, Byte1 reply
// For a logical slot the server takes `flushed` as the slot's confirmed_flush_lsn.
#include "topicbridge/replication_stream.h"

#include <libpq-fe.h>
#include <poll.h>
#include <spdlog/spdlog.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "server_error.h"

namespace topicbridge {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t kXLogDataHeader = 25;
constexpr std::size_t kKeepaliveSize = 18;
constexpr std::size_t kStatusSize = 34;
// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
constexpr std::int64_t kPostgresEpochOffsetUs = 946'684'800'000'000;

std::uint64_t ReadInt64(const char* p) {
  std::uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

void WriteInt64(char* p, std::uint64_t value) {
  for (int i = 7; i >= 0; --i) {
    p[i] = static_cast<char>(value & 0xFF);
    value >>= 8;
  }
}

std::int64_t PostgresNowUs() {
  const auto since_unix = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::system_clock::now().time_since_epoch());
  return since_unix.count() - kPostgresEpochOffsetUs;
}

// PostgreSQL's rule for slot names (ReplicationSlotValidateName): so it needs no quoting.
bool ValidSlotName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  for (const char c : name) {
    if (!(std::islower(static_cast<unsigned char>(c)) ||
          std::isdigit(static_cast<unsigned char>(c)) || c == '_')) {
      return false;
    }
  }
  return true;
}

// A value inside a START_REPLICATION option list: '...' with quotes doubled.
std::string QuoteOption(std::string_view value) {
  std::string out = "'";
  for (const char c : value) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

// Opens the connection: the user's DSN (expanded) with replication=database after it, so the
// DSN cannot turn replication off; connect_timeout before it, so the DSN may override it.
PGconn* OpenReplicationConnection(const std::string& dsn) {
  const char* keywords[] = {"connect_timeout", "fallback_application_name", "dbname", "replication",
                            nullptr};
  const char* values[] = {"10", "topicbridge", dsn.c_str(), "database", nullptr};
  return PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
}

void StoreMax(std::atomic<Lsn>& target, Lsn value) {
  Lsn current = target.load(std::memory_order_relaxed);
  while (value > current && !target.compare_exchange_weak(current, value)) {
  }
}

ReplicationStatus Failure(std::string message, bool permanent) {
  return {ReplicationStatus::kError, std::move(message), permanent};
}

// One PGresult, cleared on scope exit.
class Result {
 public:
  explicit Result(PGresult* result) : result_(result) {}
  ~Result() { PQclear(result_); }
  Result(const Result&) = delete;
  Result& operator=(const Result&) = delete;
  PGresult* get() const { return result_; }
  ExecStatusType status() const { return PQresultStatus(result_); }
  std::string_view error() const { return PQresultErrorMessage(result_); }
  std::string_view value(int row, int column) const {
    return std::string_view(PQgetvalue(result_, row, column),
                            static_cast<std::size_t>(PQgetlength(result_, row, column)));
  }

 private:
  PGresult* result_;
};

// Ends COPY BOTH after the final status update: sends CopyDone and reads (discarding) what
// the server still sends until its own CopyDone, by which time it has processed the status
// update. Closing the socket with unread data instead makes the kernel reset the connection,
// and the server then loses the status update still in its receive buffer. Best effort, bounded.
void EndCopy(PGconn* conn, std::chrono::milliseconds timeout) {
  if (PQputCopyEnd(conn, nullptr) != 1 || PQflush(conn) != 0) return;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    char* data = nullptr;
    const int length = PQgetCopyData(conn, &data, /*async=*/1);
    if (length > 0) {
      PQfreemem(data);
      continue;
    }
    if (length < 0) return;  // -1: the server's CopyDone; -2: an error
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return;
    pollfd socket{PQsocket(conn), POLLIN, 0};
    if (poll(&socket, 1, static_cast<int>(left.count())) < 0 && errno != EINTR) return;
    if (PQconsumeInput(conn) == 0) return;
  }
}

}  // namespace

struct ReplicationStream::Connection {
  PGconn* conn = nullptr;
  char* copy_buffer = nullptr;  // the last XLogData, owned by libpq's allocator

  ~Connection() {
    FreeBuffer();
    if (conn != nullptr) PQfinish(conn);
  }
  void FreeBuffer() {
    if (copy_buffer != nullptr) PQfreemem(copy_buffer);
    copy_buffer = nullptr;
  }
  std::string Where() const {
    const char* host = PQhost(conn);
    const char* port = PQport(conn);
    return std::string(host != nullptr && *host != '\0' ? host : "(default host)") + ":" +
           (port != nullptr && *port != '\0' ? port : "5432");
  }
};

ReplicationStream::ReplicationStream(ReplicationOptions options) : options_(std::move(options)) {}

ReplicationStream::~ReplicationStream() { Close(); }

std::chrono::steady_clock::time_point ReplicationStream::last_message_time() const {
  return Clock::time_point(Clock::duration(last_message_ns_.load(std::memory_order_relaxed)));
}

void ReplicationStream::Confirm(Lsn flushed) { AdvanceConfirmed(flushed); }

void ReplicationStream::AdvanceConfirmed(Lsn lsn) { StoreMax(confirmed_, lsn); }

void ReplicationStream::ConfirmIdle() {
  idle_ = true;
  if (keepalive_end_ != 0) AdvanceConfirmed(keepalive_end_);
}

ReplicationStatus ReplicationStream::ConnectWithBackoff(const std::atomic<bool>& stop) {
  auto delay = options_.backoff_initial;
  // A standby waiting for the slot, or a database that is down, fails the same way for a long
  // time: a failure is logged when it differs from the last one logged, else once a minute.
  std::string logged;
  Clock::time_point logged_at{};
  for (int attempt = 1;; ++attempt) {
    ReplicationStatus status = Connect();
    if (status.ok() || stop.load()) return status;
    const bool repeat =
        status.message == logged && Clock::now() - logged_at < std::chrono::minutes(1);
    spdlog::log(repeat ? spdlog::level::debug : spdlog::level::warn,
                "replication connect attempt {} failed, retrying in {:.1f} s: {}", attempt,
                std::chrono::duration<double>(delay).count(), status.message);
    if (!repeat) {
      logged = status.message;
      logged_at = Clock::now();
    }
    const auto until = Clock::now() + delay;
    while (!stop.load() && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (stop.load()) return status;
    delay = std::min(delay * 2, options_.backoff_max);
  }
}

ReplicationStatus ReplicationStream::Connect() {
  Close();
  slot_created_ = false;
  ReplicationStatus status = ConnectOnce();
  if (!status.ok()) {
    Drop();
    if (options_.on_connect_failure) options_.on_connect_failure(status.message);
    return status;
  }
  idle_ = false;
  keepalive_end_ = 0;
  next_status_ = Clock::now() + options_.status_interval;
  last_message_ns_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
  connected_.store(true, std::memory_order_release);
  spdlog::info("replication: streaming slot {} from {} (database {}, {})", options_.slot,
               FormatLsn(confirmed()), identity_.database,
               options_.tables.empty() ? std::string("all tables")
                                       : std::to_string(options_.tables.size()) + " tables");
  return status;
}

ReplicationStatus ReplicationStream::ConnectOnce() {
  const std::string& slot = options_.slot;
  if (!ValidSlotName(slot)) {
    return Failure(
        "postgres.slot \"" + slot + "\": a slot name is 1-63 characters of a-z, 0-9 and _", true);
  }
  for (const std::string& table : options_.tables) {
    if (table.find('.') == std::string::npos) {
      return Failure("replication table \"" + table + "\": expected schema.table", true);
    }
  }
  connection_ = std::make_unique<Connection>();
  connection_->conn = OpenReplicationConnection(options_.dsn);
  PGconn* conn = connection_->conn;
  if (conn == nullptr) return Failure("connecting to PostgreSQL: out of memory", false);
  if (PQstatus(conn) != CONNECTION_OK) {
    return Explained("connecting to PostgreSQL at " + connection_->Where(), PQerrorMessage(conn));
  }

  {
    Result identify(PQexec(conn, "IDENTIFY_SYSTEM"));
    if (identify.status() != PGRES_TUPLES_OK || PQntuples(identify.get()) != 1 ||
        PQnfields(identify.get()) < 4) {
      return Explained("IDENTIFY_SYSTEM", identify.error());
    }
    if (PQgetisnull(identify.get(), 0, 3)) {
      return Failure("IDENTIFY_SYSTEM: the connection is not bound to a database", true);
    }
    identity_.system_id = std::string(identify.value(0, 0));
    identity_.timeline = std::atoi(PQgetvalue(identify.get(), 0, 1));
    identity_.wal_position = ParseLsn(identify.value(0, 2)).value_or(0);
    identity_.database = std::string(identify.value(0, 3));
  }
  {
    Result wal_level(PQexec(conn, "SHOW wal_level"));
    if (wal_level.status() != PGRES_TUPLES_OK || PQntuples(wal_level.get()) != 1) {
      return Explained("SHOW wal_level", wal_level.error());
    }
    if (wal_level.value(0, 0) != "logical") {
      return Failure("wal_level is " + std::string(wal_level.value(0, 0)) +
                         " on the server; logical decoding needs wal_level = logical: set it "
                         "in postgresql.conf and restart PostgreSQL",
                     true);
    }
  }
  if (ReplicationStatus status = EnsureSlot(); !status.ok()) return status;
  return StartReplication();
}

ReplicationStatus ReplicationStream::EnsureSlot() {
  PGconn* conn = connection_->conn;
  const std::string& slot = options_.slot;
  // The slot name was validated (a-z0-9_), so it needs no quoting in either command.
  const std::string query =
      "SELECT slot_type, plugin, database, active, active_pid FROM pg_replication_slots "
      "WHERE slot_name = '" +
      slot + "'";
  int create_attempts = 0;
  int active_waits = 0;
  for (;;) {
    Result found(PQexec(conn, query.c_str()));
    if (found.status() != PGRES_TUPLES_OK) {
      return Explained("reading pg_replication_slots", found.error());
    }
    if (PQntuples(found.get()) == 0) {
      const std::string create =
          "CREATE_REPLICATION_SLOT " + slot + " LOGICAL wal2json NOEXPORT_SNAPSHOT";
      Result created(PQexec(conn, create.c_str()));
      if (created.status() == PGRES_TUPLES_OK) {
        slot_created_ = true;
        if (const Lsn before = confirmed(); before != 0) {
          // This process streamed from the slot before: its loss is a gap in delivery.
          spdlog::error(
              "replication: slot {} was gone (dropped, or PostgreSQL failed over to a standby, "
              "which has no logical slots in PostgreSQL 15) and is created again at {}: changes "
              "committed after {} and before that are NOT delivered; replay them from the "
              "Aidbox tables if they matter",
              slot, std::string(created.value(0, 1)), FormatLsn(before));
        } else {
          spdlog::info("replication: created slot {} (plugin wal2json) at {}", slot,
                       std::string(created.value(0, 1)));
        }
        return {};
      }
      // Another process may have created it between the query and the command: look again.
      if (created.error().find("already exists") != std::string_view::npos &&
          ++create_attempts < 2) {
        continue;
      }
      return Explained("creating replication slot " + slot, created.error());
    }
    const std::string_view type = found.value(0, 0);
    const std::string_view plugin = found.value(0, 1);
    const std::string_view database = found.value(0, 2);
    if (type != "logical") {
      return Failure("replication slot " + slot + " is a " + std::string(type) +
                         " slot; topicbridge needs a logical slot with plugin wal2json: set "
                         "postgres.slot to another name, or drop this slot if nothing uses it",
                     true);
    }
    if (plugin != "wal2json") {
      return Failure("replication slot " + slot + " uses plugin " + std::string(plugin) +
                         ", not wal2json: set postgres.slot to another name, or drop it "
                         "(SELECT pg_drop_replication_slot('" +
                         slot + "')) if nothing else uses it",
                     true);
    }
    if (database != identity_.database) {
      return Failure("replication slot " + slot + " belongs to database " + std::string(database) +
                         ", not " + identity_.database +
                         ": set postgres.slot to another name or fix dbname in postgres.dsn",
                     true);
    }
    if (found.value(0, 3) == "t") {
      const int pid = std::atoi(PQgetvalue(found.get(), 0, 4));
      // A walsender whose client just went away (ours before a reconnect, or a process that
      // restarted) releases the slot moments later: wait 5 s for our own, 1 s for any other.
      const int max_waits = pid == previous_backend_pid_ ? 50 : 10;
      if (++active_waits < max_waits) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        continue;
      }
      return Failure("replication slot " + slot + " is in use by another process (PID " +
                         std::to_string(pid) +
                         "): standing by, taking over when it is free (if no other topicbridge "
                         "should hold it: stop that process or set postgres.slot to another "
                         "name)",
                     false);
    }
    return {};
  }
}

ReplicationStatus ReplicationStream::StartReplication() {
  std::string command = "START_REPLICATION SLOT " + options_.slot + " LOGICAL " +
                        FormatLsn(confirmed()) +
                        " (\"format-version\" '2', \"include-lsn\" '1', \"include-timestamp\" "
                        "'1', \"include-xids\" '1', \"include-transaction\" '1'";
  if (!options_.tables.empty()) {
    std::string tables;
    for (const std::string& table : options_.tables) {
      if (!tables.empty()) tables += ',';
      tables += table;
    }
    command += ", \"add-tables\" " + QuoteOption(tables);
  }
  command += ")";
  Result started(PQexec(connection_->conn, command.c_str()));
  if (started.status() != PGRES_COPY_BOTH) {
    return Explained("starting replication from slot " + options_.slot, started.error());
  }
  return {};
}

ReplicationStatus ReplicationStream::Explained(std::string_view step, std::string_view text) {
  auto explained = pg::ExplainServerError(step, text, options_.slot);
  return Failure(std::move(explained.message), explained.permanent);
}

ReplicationStatus ReplicationStream::Next(std::string_view* message,
                                          std::chrono::milliseconds timeout) {
  if (!connected()) {
    return {ReplicationStatus::kDisconnected, "replication stream is not connected"};
  }
  connection_->FreeBuffer();
  PGconn* conn = connection_->conn;
  const auto deadline = Clock::now() + timeout;
  bool checked_at_deadline = false;  // read the socket once more at the deadline (timeout 0)
  for (;;) {
    if (Clock::now() >= next_status_) {
      if (ReplicationStatus status = SendStatus(); !status.ok()) return status;
    }
    char* data = nullptr;
    const int length = PQgetCopyData(conn, &data, /*async=*/1);
    if (length > 0) {
      last_message_ns_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
      const auto size = static_cast<std::size_t>(length);
      if (data[0] == 'w' && size >= kXLogDataHeader) {
        StoreMax(last_received_, ReadInt64(data + 1));
        StoreMax(server_wal_end_, ReadInt64(data + 9));
        idle_ = false;
        keepalive_end_ = 0;
        connection_->copy_buffer = data;
        *message = std::string_view(data + kXLogDataHeader, size - kXLogDataHeader);
        return {};
      }
      const char type = data[0];
      ReplicationStatus status;
      if (type == 'k' && size >= kKeepaliveSize) {
        status = HandleKeepalive(data);
      } else {
        status = Lost("unexpected replication message type " + std::to_string(int{type}));
      }
      PQfreemem(data);
      if (!status.ok()) return status;
      continue;
    }
    if (length == 0) {
      const auto now = Clock::now();
      if (now >= deadline) {
        if (checked_at_deadline) return {ReplicationStatus::kTimeout, {}};
        checked_at_deadline = true;
      }
      if (ReplicationStatus status = WaitForInput(std::min(deadline, next_status_)); !status.ok()) {
        return status;
      }
      continue;
    }
    if (length == -1) {  // the server ended COPY: its result says why
      std::string why = "the server ended the replication stream";
      Result result(PQgetResult(conn));
      if (result.get() != nullptr && result.status() == PGRES_FATAL_ERROR) {
        why += ": " + pg::OneLine(result.error());
      }
      return Lost(why);
    }
    return Lost(PQerrorMessage(conn));
  }
}

ReplicationStatus ReplicationStream::WaitForInput(std::chrono::steady_clock::time_point until) {
  PGconn* conn = connection_->conn;
  const auto wait = std::chrono::ceil<std::chrono::milliseconds>(until - Clock::now());
  pollfd socket{PQsocket(conn), POLLIN, 0};
  if (poll(&socket, 1, static_cast<int>(std::max<std::int64_t>(wait.count(), 0))) < 0 &&
      errno != EINTR) {
    return Lost(std::string("poll: ") + std::strerror(errno));
  }
  if (PQconsumeInput(conn) == 0) return Lost(PQerrorMessage(conn));
  return {};
}

ReplicationStatus ReplicationStream::HandleKeepalive(const char* data) {
  const Lsn wal_end = ReadInt64(data + 1);
  const bool reply_requested = data[17] != 0;
  StoreMax(server_wal_end_, wal_end);
  keepalive_end_ = std::max(keepalive_end_, wal_end);
  if (idle_) AdvanceConfirmed(wal_end);
  if (reply_requested) return SendStatus();
  return {};
}

ReplicationStatus ReplicationStream::SendStatus(bool reply_requested) {
  if (!connected()) {
    return {ReplicationStatus::kDisconnected, "replication stream is not connected"};
  }
  // written = flushed = applied: for a logical slot only `flushed` matters, and reporting
  // `written` beyond it would stop the keepalives that ConfirmIdle() relies on.
  const Lsn flushed = confirmed();
  char message[kStatusSize];
  message[0] = 'r';
  WriteInt64(message + 1, flushed);
  WriteInt64(message + 9, flushed);
  WriteInt64(message + 17, flushed);
  WriteInt64(message + 25, static_cast<std::uint64_t>(PostgresNowUs()));
  message[33] = reply_requested ? 1 : 0;
  PGconn* conn = connection_->conn;
  if (PQputCopyData(conn, message, kStatusSize) != 1 || PQflush(conn) != 0) {
    return Lost(std::string("sending status update: ") + PQerrorMessage(conn));
  }
  next_status_ = Clock::now() + options_.status_interval;
  return {};
}

ReplicationStatus ReplicationStream::Lost(std::string_view what) {
  std::string message = "replication connection lost: " + pg::OneLine(what) +
                        " (reconnect to resume from the confirmed LSN " + FormatLsn(confirmed()) +
                        ")";
  spdlog::warn("{}", message);
  Drop();
  return {ReplicationStatus::kDisconnected, std::move(message)};
}

void ReplicationStream::Drop() {
  if (connection_ != nullptr && connection_->conn != nullptr) {
    previous_backend_pid_ = PQbackendPID(connection_->conn);
  }
  connected_.store(false, std::memory_order_release);
  connection_.reset();
}

void ReplicationStream::Close() {
  // Best effort: a failure already drops the connection.
  if (connected() && SendStatus().ok()) {
    connection_->FreeBuffer();
    EndCopy(connection_->conn, std::chrono::seconds(2));
  }
  Drop();
}

}  // namespace topicbridge
