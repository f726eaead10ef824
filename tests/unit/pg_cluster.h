// PgCluster: a throwaway PostgreSQL 15 cluster for tests, in its own temp dir, on a free
// 127.0.0.1 port, with wal_level=logical and wal2json allowed. Runs the server as user postgres
// when the test runs as root (initdb refuses root). The destructor stops it
// (pg_ctl stop -m immediate) and deletes the directory, so a failing test cleans up too; a
// watchdog process does the same if the test process dies without unwinding (killed, crashed).
// Not copyable; one thread.
#pragma once

#include <string>
#include <vector>

namespace topicbridge::testing {

struct PgClusterOptions {
  // Extra postgresql.conf lines, e.g. "wal_sender_timeout = '5s'".
  std::vector<std::string> settings;
  // pg_hba.conf lines placed before the default "trust everything on 127.0.0.1 and the socket".
  std::vector<std::string> hba_lines;
};

class PgCluster {
 public:
  PgCluster() = default;
  ~PgCluster() { Stop(); }
  PgCluster(const PgCluster&) = delete;
  PgCluster& operator=(const PgCluster&) = delete;

  // Empty when the PostgreSQL server binaries or wal2json are not installed: tests then skip
  // (exit code 77 is "skipped" for meson).
  static std::string FindBinDir();

  // initdb + start. false with *error (including the server log's tail) on failure.
  bool Start(const PgClusterOptions& options, std::string* error);
  // Immediate shutdown and removal of the directory. Idempotent.
  void Stop();

  bool running() const { return running_; }
  int port() const { return port_; }
  const std::string& dir() const { return dir_; }

  // "host=127.0.0.1 port=<port> dbname=<dbname> user=<user>" (+ password= when given).
  std::string Dsn(const std::string& dbname = "postgres", const std::string& user = "postgres",
                  const std::string& password = "") const;

  // Runs `sql` (one or more statements) in `dbname` as postgres. Returns false and sets *error
  // on failure; *first_value receives the first column of the first row of the last result.
  bool Exec(const std::string& dbname, const std::string& sql, std::string* error = nullptr,
            std::string* first_value = nullptr) const;

 private:
  bool Run(const std::string& command, std::string* error) const;
  std::string LogTail() const;
  std::string StopCommand() const;
  void StartWatchdog();
  void StopWatchdog();

  std::string bin_dir_;
  std::string dir_;
  int port_ = 0;
  bool running_ = false;
  int watchdog_pid_ = 0;
  int watchdog_pipe_ = -1;  // write end; the watchdog acts when it reads end-of-file
};

}  // namespace topicbridge::testing
