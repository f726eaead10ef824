// ReplicationStream against a throwaway PostgreSQL 15 + wal2json cluster (pg_cluster.h):
// streaming through the decoder, resumption after Confirm(), keepalive advancement of an idle
// stream, and the connection errors users meet first. Skips (exit 77) without PostgreSQL.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "pg_cluster.h"
#include "topicbridge/replication_stream.h"
#include "topicbridge/wal2json_decoder.h"

namespace topicbridge {
namespace {

using std::chrono::milliseconds;
using testing::PgCluster;

PgCluster& Cluster() {
  static PgCluster cluster;
  if (!cluster.running()) {
    if (PgCluster::FindBinDir().empty()) {
      std::fprintf(stderr, "pg_test: PostgreSQL 15 with wal2json not installed, skipping\n");
      std::exit(77);
    }
    testing::PgClusterOptions options;
    options.hba_lines = {"host all pwuser 127.0.0.1/32 scram-sha-256"};
    std::string error;
    REQUIRE_MESSAGE(cluster.Start(options, &error), error);
  }
  return cluster;
}

void Sql(const std::string& dbname, const std::string& sql) {
  std::string error;
  REQUIRE_MESSAGE(Cluster().Exec(dbname, sql, &error), sql << ": " << error);
}

std::string SqlValue(const std::string& dbname, const std::string& sql) {
  std::string error;
  std::string value;
  REQUIRE_MESSAGE(Cluster().Exec(dbname, sql, &error, &value), sql << ": " << error);
  return value;
}

// A database with an Aidbox-like table "patient" and an unrelated table "other". Idempotent:
// doctest runs a test case once per SUBCASE.
std::string CreateDatabase(const std::string& name) {
  if (SqlValue("postgres", "SELECT count(*) FROM pg_database WHERE datname = '" + name + "'") !=
      "0") {
    return name;
  }
  Sql("postgres", "CREATE DATABASE " + name);
  Sql(name,
      "CREATE TABLE patient (id text PRIMARY KEY, status text, resource jsonb);"
      "CREATE TABLE other (id int)");
  return name;
}

ReplicationOptions Options(const std::string& dbname, const std::string& slot) {
  ReplicationOptions options;
  options.dsn = Cluster().Dsn(dbname);
  options.slot = slot;
  options.tables = {"public.patient"};
  options.status_interval = milliseconds(200);
  return options;
}

struct Row {
  ChangeKind kind;
  std::string table;
  std::string id;
};

struct Transaction {
  std::uint32_t xid = 0;
  Lsn next_lsn = 0;
  std::vector<Row> rows;
};

// Reads until `wanted` transactions with row changes have committed, or `timeout` passes.
// Transactions without rows (other tables, filtered out) are dropped.
std::vector<Transaction> ReadTransactions(ReplicationStream& stream, std::size_t wanted,
                                          milliseconds timeout) {
  Wal2JsonDecoder decoder;
  Change change;
  Transaction current;
  std::vector<Transaction> done;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (done.size() < wanted && std::chrono::steady_clock::now() < deadline) {
    std::string_view message;
    const ReplicationStatus status = stream.Next(&message, milliseconds(100));
    if (status.code == ReplicationStatus::kTimeout) continue;
    REQUIRE_MESSAGE(status.ok(), status.message);
    const DecodeStatus decoded = decoder.Decode(message, &change);
    REQUIRE_MESSAGE(decoded.ok(), decoded.error);
    switch (change.kind) {
      case ChangeKind::kBegin:
        current = Transaction{change.xid, 0, {}};
        break;
      case ChangeKind::kInsert:
      case ChangeKind::kUpdate:
      case ChangeKind::kDelete: {
        const ColumnValue* id = change.Column("id") ? change.Column("id") : change.Identity("id");
        current.rows.push_back(
            {change.kind, std::string(change.table), id ? std::string(id->text) : ""});
        break;
      }
      case ChangeKind::kCommit:
        CHECK(change.xid == current.xid);
        current.next_lsn = change.next_lsn;
        if (!current.rows.empty()) done.push_back(current);
        break;
      default:
        break;
    }
  }
  return done;
}

void CheckRow(const Transaction& transaction, ChangeKind kind, const std::string& id) {
  REQUIRE(transaction.rows.size() == 1);
  CHECK(transaction.rows[0].kind == kind);
  CHECK(transaction.rows[0].table == "patient");
  CHECK(transaction.rows[0].id == id);
}

Lsn SlotConfirmedLsn(const std::string& dbname, const std::string& slot) {
  const std::string text =
      SqlValue(dbname, "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '" +
                           slot + "'");
  return ParseLsn(text).value_or(0);
}

TEST_CASE("streams I/U/D of the listed tables only, and resumes after the confirmed commit") {
  const std::string db = CreateDatabase("resume");
  const ReplicationOptions options = Options(db, "resume_slot");
  Lsn first_commit = 0;
  {
    ReplicationStream stream(options);
    const ReplicationStatus connected = stream.Connect();
    REQUIRE_MESSAGE(connected.ok(), connected.message);
    CHECK(stream.slot_created());
    CHECK(stream.identity().database == db);
    Sql(db, "INSERT INTO patient VALUES ('p1', 'created', '{\"name\": \"Jörg\"}')");
    Sql(db, "INSERT INTO other VALUES (1)");
    Sql(db, "UPDATE patient SET status = 'updated' WHERE id = 'p1'");
    Sql(db, "DELETE FROM patient WHERE id = 'p1'");
    const auto transactions = ReadTransactions(stream, 3, milliseconds(10000));
    REQUIRE(transactions.size() == 3);
    CheckRow(transactions[0], ChangeKind::kInsert, "p1");
    CheckRow(transactions[1], ChangeKind::kUpdate, "p1");
    CheckRow(transactions[2], ChangeKind::kDelete, "p1");
    CHECK(stream.last_received() > 0);
    CHECK(stream.server_wal_end() >= transactions[2].next_lsn);
    first_commit = transactions[0].next_lsn;
    stream.Confirm(first_commit);
    stream.Confirm(first_commit - 1);  // never moves backwards
    CHECK(stream.confirmed() == first_commit);
    stream.Close();  // sends the final status update
  }
  CHECK(SlotConfirmedLsn(db, "resume_slot") == first_commit);

  Lsn last_commit = 0;
  {
    ReplicationStream restarted(options);  // as after a process restart: starts at the slot
    const ReplicationStatus connected = restarted.Connect();
    REQUIRE_MESSAGE(connected.ok(), connected.message);
    CHECK_FALSE(restarted.slot_created());
    const auto transactions = ReadTransactions(restarted, 2, milliseconds(10000));
    REQUIRE(transactions.size() == 2);  // the confirmed insert is not delivered again
    CheckRow(transactions[0], ChangeKind::kUpdate, "p1");
    CheckRow(transactions[1], ChangeKind::kDelete, "p1");
    last_commit = transactions[1].next_lsn;
    restarted.Confirm(last_commit);
  }  // destructor closes, sending the status
  CHECK(SlotConfirmedLsn(db, "resume_slot") == last_commit);

  ReplicationStream stream(options);
  REQUIRE(stream.Connect().ok());
  CHECK(ReadTransactions(stream, 1, milliseconds(1000)).empty());

  SUBCASE("the same object reconnects after the server drops it") {
    Sql(db,
        "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
        "WHERE slot_name = 'resume_slot'");
    std::string_view message;
    ReplicationStatus status;
    for (int i = 0; i < 50 && status.code != ReplicationStatus::kDisconnected; ++i) {
      status = stream.Next(&message, milliseconds(100));
    }
    REQUIRE(status.code == ReplicationStatus::kDisconnected);
    CHECK(status.message.find("replication connection lost") != std::string::npos);
    CHECK_FALSE(stream.connected());
    Sql(db, "INSERT INTO patient VALUES ('p2', 'created', '{}')");
    const ReplicationStatus reconnected = stream.Connect();
    REQUIRE_MESSAGE(reconnected.ok(), reconnected.message);
    const auto transactions = ReadTransactions(stream, 2, milliseconds(1500));
    REQUIRE(transactions.size() == 1);
    CheckRow(transactions[0], ChangeKind::kInsert, "p2");
  }
}

TEST_CASE("an idle stream confirms keepalive positions only after ConfirmIdle") {
  const std::string db = CreateDatabase("idle");
  ReplicationStream stream(Options(db, "idle_slot"));
  REQUIRE(stream.Connect().ok());
  const Lsn start = SlotConfirmedLsn(db, "idle_slot");
  const auto pump = [&](milliseconds duration) {
    std::string_view message;
    const auto until = std::chrono::steady_clock::now() + duration;
    while (std::chrono::steady_clock::now() < until) {
      const ReplicationStatus status = stream.Next(&message, milliseconds(50));
      REQUIRE_MESSAGE(status.code == ReplicationStatus::kTimeout, status.message);
    }
  };
  // WAL of another database produces no output for this slot.
  Sql("postgres",
      "CREATE TABLE filler (x int); INSERT INTO filler SELECT generate_series(1, 1000)");
  pump(milliseconds(800));
  CHECK(stream.confirmed() == 0);
  CHECK(SlotConfirmedLsn(db, "idle_slot") == start);

  stream.ConfirmIdle();
  Sql("postgres", "INSERT INTO filler SELECT generate_series(1, 1000)");
  for (int i = 0; i < 40 && stream.confirmed() <= start; ++i) pump(milliseconds(100));
  CHECK(stream.confirmed() > start);
  CHECK(stream.confirmed() <= stream.server_wal_end());
  pump(milliseconds(400));  // past status_interval: the server has it
  CHECK(SlotConfirmedLsn(db, "idle_slot") == stream.confirmed());
}

TEST_CASE("connection problems are named with what to do") {
  testing::PgCluster& pg = Cluster();
  const std::string db = CreateDatabase("errors");

  SUBCASE("wrong password") {
    Sql("postgres",
        "DROP ROLE IF EXISTS pwuser; CREATE ROLE pwuser LOGIN REPLICATION PASSWORD 'right'");
    ReplicationOptions options = Options(db, "pw_slot");
    options.dsn = pg.Dsn(db, "pwuser", "wrong");
    const ReplicationStatus status = ReplicationStream(options).Connect();
    CHECK(status.code == ReplicationStatus::kError);
    CHECK(status.permanent);
    CHECK_MESSAGE(status.message.find("wrong password") != std::string::npos, status.message);
  }
  SUBCASE("server unreachable") {
    ReplicationOptions options = Options(db, "x_slot");
    options.dsn = "host=127.0.0.1 port=1 dbname=x user=postgres";
    const ReplicationStatus status = ReplicationStream(options).Connect();
    CHECK_FALSE(status.permanent);
    CHECK_MESSAGE(status.message.find("PostgreSQL is unreachable") != std::string::npos,
                  status.message);
    CHECK(status.message.find("127.0.0.1:1") != std::string::npos);
  }
  SUBCASE("ConnectWithBackoff gives up when stopped") {
    ReplicationOptions options = Options(db, "x_slot");
    options.dsn = "host=127.0.0.1 port=1 dbname=x user=postgres";
    options.backoff_initial = milliseconds(100);
    ReplicationStream stream(options);
    std::atomic<bool> stop{false};
    std::thread stopper([&] {
      std::this_thread::sleep_for(milliseconds(700));
      stop = true;
    });
    const auto started = std::chrono::steady_clock::now();
    const ReplicationStatus status = stream.ConnectWithBackoff(stop);
    stopper.join();
    CHECK_FALSE(status.ok());
    CHECK(std::chrono::steady_clock::now() - started < milliseconds(3000));
  }
  SUBCASE("slot in use by another consumer") {
    ReplicationStream first(Options(db, "busy_slot"));
    REQUIRE(first.Connect().ok());
    const ReplicationStatus status = ReplicationStream(Options(db, "busy_slot")).Connect();
    CHECK(status.code == ReplicationStatus::kError);
    CHECK_MESSAGE(status.message.find("in use by another process") != std::string::npos,
                  status.message);
  }
  SUBCASE("invalid slot name and table entry") {
    const ReplicationStatus bad_slot = ReplicationStream(Options(db, "Bad-Name")).Connect();
    CHECK(bad_slot.permanent);
    CHECK(bad_slot.message.find("postgres.slot") != std::string::npos);
    ReplicationOptions options = Options(db, "ok_slot");
    options.tables = {"patient"};
    CHECK(ReplicationStream(options).Connect().message.find("expected schema.table") !=
          std::string::npos);
  }
  // The rest needs this server build's output_plugin_libraries setting.
  std::string ignored;
  if (!pg.Exec(db, "SHOW output_plugin_libraries", &ignored)) return;
  SUBCASE("wal2json not allowed as an output plugin") {
    ReplicationOptions options = Options(db, "refused_slot");
    options.dsn += " options='-c output_plugin_libraries=test_decoding'";
    const ReplicationStatus status = ReplicationStream(options).Connect();
    CHECK(status.permanent);
    CHECK_MESSAGE(status.message.find("add it to output_plugin_libraries") != std::string::npos,
                  status.message);
  }
  SUBCASE("existing slot with another plugin") {
    Sql(db,
        "SET output_plugin_libraries = 'test_decoding';"
        "SELECT pg_create_logical_replication_slot('td_slot', 'test_decoding')");
    const ReplicationStatus status = ReplicationStream(Options(db, "td_slot")).Connect();
    CHECK(status.permanent);
    CHECK_MESSAGE(
        status.message.find("uses plugin test_decoding, not wal2json") != std::string::npos,
        status.message);
  }
}

TEST_CASE("a server without wal_level=logical is named as such") {
  Cluster();  // skips when PostgreSQL is missing
  testing::PgCluster replica;
  testing::PgClusterOptions options;
  options.settings = {"wal_level = replica"};  // later lines win in postgresql.conf
  std::string error;
  REQUIRE_MESSAGE(replica.Start(options, &error), error);
  ReplicationOptions stream_options;
  stream_options.dsn = replica.Dsn();
  const ReplicationStatus status = ReplicationStream(stream_options).Connect();
  CHECK(status.permanent);
  CHECK_MESSAGE(status.message.find("needs wal_level = logical") != std::string::npos,
                status.message);
}

}  // namespace
}  // namespace topicbridge
