// PgCluster: shells out to initdb / pg_ctl (via runuser when root) and talks SQL over libpq.
#include "pg_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace topicbridge::testing {
namespace {

namespace fs = std::filesystem;

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  close(fd);
  return port;
}

bool ServerKnowsSetting(const std::string& bin_dir, const std::string& name) {
  const std::string command = "'" + bin_dir + "/postgres' --describe-config 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return false;
  char line[4096];
  bool found = false;
  while (fgets(line, sizeof line, pipe) != nullptr) {
    if (std::string_view(line).substr(0, name.size() + 1) == name + "\t") found = true;
  }
  pclose(pipe);
  return found;
}

}  // namespace

std::string PgCluster::FindBinDir() {
  for (const char* dir : {"/usr/lib/postgresql/15/bin", "/usr/local/pgsql/bin"}) {
    const fs::path bin(dir);
    if (fs::exists(bin / "initdb") && fs::exists(bin / "pg_ctl") &&
        fs::exists(bin.parent_path() / "lib" / "wal2json.so")) {
      return bin.string();
    }
  }
  return {};
}

bool PgCluster::Run(const std::string& command, std::string* error) const {
  const bool root = geteuid() == 0;
  const std::string full =
      (root ? "runuser -u postgres -- " : "") + command + " >>'" + dir_ + "/commands.log' 2>&1";
  if (std::system(full.c_str()) == 0) return true;
  if (error != nullptr) *error = "command failed: " + command + "\n" + LogTail();
  return false;
}

std::string PgCluster::LogTail() const {
  std::string out;
  for (const char* name : {"commands.log", "server.log"}) {
    std::ifstream in(dir_ + "/" + name);
    std::stringstream text;
    text << in.rdbuf();
    const std::string all = text.str();
    out += std::string("--- ") + name + " (tail)\n" +
           all.substr(all.size() > 3000 ? all.size() - 3000 : 0);
  }
  return out;
}

bool PgCluster::Start(const PgClusterOptions& options, std::string* error) {
  bin_dir_ = FindBinDir();
  if (bin_dir_.empty()) {
    *error = "PostgreSQL 15 server binaries with wal2json not found";
    return false;
  }
  char pattern[] = "/tmp/topicbridge-pg-XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    *error = "mkdtemp failed";
    return false;
  }
  dir_ = pattern;
  if (geteuid() == 0) {
    const passwd* postgres = getpwnam("postgres");
    if (postgres == nullptr || chown(dir_.c_str(), postgres->pw_uid, postgres->pw_gid) != 0) {
      *error = "running as root needs a 'postgres' user to own " + dir_;
      return false;
    }
  }
  const std::string data = dir_ + "/data";
  if (!Run("'" + bin_dir_ + "/initdb' -D '" + data +
               "' -U postgres -A trust -E UTF8 --no-locale --no-sync",
           error)) {
    return false;
  }
  {
    std::ofstream conf(data + "/postgresql.conf", std::ios::app);
    conf << "listen_addresses = '127.0.0.1'\n"
         << "unix_socket_directories = '" << dir_ << "'\n"
         << "wal_level = logical\nmax_replication_slots = 10\nmax_wal_senders = 10\n"
         << "max_connections = 30\nshared_buffers = 32MB\nfsync = off\n"
         << "synchronous_commit = off\nfull_page_writes = off\n";
    // A setting of this server build; plain PostgreSQL 15 does not know it.
    if (ServerKnowsSetting(bin_dir_, "output_plugin_libraries")) {
      conf << "output_plugin_libraries = 'wal2json'\n";
    }
    for (const std::string& line : options.settings) conf << line << "\n";
    std::ofstream hba(data + "/pg_hba.conf", std::ios::trunc);
    for (const std::string& line : options.hba_lines) hba << line << "\n";
    hba << "local all all trust\nhost all all 127.0.0.1/32 trust\n"
        << "host replication all 127.0.0.1/32 trust\n";
  }
  // A port that was free a moment ago may be taken by the time the server binds: try again.
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = FreeLoopbackPort();
    if (Run("'" + bin_dir_ + "/pg_ctl' -D '" + data + "' -l '" + dir_ +
                "/server.log' -w -t 30 -o '-p " + std::to_string(port_) + "' start",
            error)) {
      running_ = true;
      StartWatchdog();
      return true;
    }
  }
  return false;
}

std::string PgCluster::StopCommand() const {
  return "'" + bin_dir_ + "/pg_ctl' -D '" + dir_ + "/data' -m immediate -w stop";
}

// A child in its own session (so a signal to the test's process group spares it) that blocks
// reading a pipe only this process writes to. End-of-file means the test process is gone:
// it then stops the cluster and removes the directory.
void PgCluster::StartWatchdog() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return;
  const std::string prefix = geteuid() == 0 ? "runuser -u postgres -- " : "";
  const std::string script =
      prefix + StopCommand() + " >/dev/null 2>&1; rm -rf '" + dir_ + "'";  // built before fork
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[1]);
    setsid();
    char byte;
    while (read(fds[0], &byte, 1) != 0) {
    }
    execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[0]);
  if (pid < 0) {
    close(fds[1]);
    return;
  }
  watchdog_pid_ = pid;
  watchdog_pipe_ = fds[1];
}

void PgCluster::StopWatchdog() {
  if (watchdog_pid_ > 0) {
    kill(watchdog_pid_, SIGKILL);
    waitpid(watchdog_pid_, nullptr, 0);
    watchdog_pid_ = 0;
  }
  if (watchdog_pipe_ >= 0) close(watchdog_pipe_);
  watchdog_pipe_ = -1;
}

void PgCluster::Stop() {
  if (dir_.empty()) return;
  StopWatchdog();
  if (running_) {
    std::string ignored;
    Run(StopCommand(), &ignored);
    running_ = false;
  }
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
  dir_.clear();
}

std::string PgCluster::Dsn(const std::string& dbname, const std::string& user,
                           const std::string& password) const {
  std::string dsn =
      "host=127.0.0.1 port=" + std::to_string(port_) + " dbname=" + dbname + " user=" + user;
  if (!password.empty()) dsn += " password=" + password;
  return dsn;
}

bool PgCluster::Exec(const std::string& dbname, const std::string& sql, std::string* error,
                     std::string* first_value) const {
  PGconn* conn = PQconnectdb(Dsn(dbname).c_str());
  bool ok = PQstatus(conn) == CONNECTION_OK;
  if (!ok) {
    if (error != nullptr) *error = PQerrorMessage(conn);
  } else {
    PGresult* result = PQexec(conn, sql.c_str());
    const ExecStatusType status = PQresultStatus(result);
    ok = status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
    if (!ok && error != nullptr) *error = PQresultErrorMessage(result);
    if (ok && first_value != nullptr) {
      *first_value = (status == PGRES_TUPLES_OK && PQntuples(result) > 0 && PQnfields(result) > 0)
                         ? PQgetvalue(result, 0, 0)
                         : "";
    }
    PQclear(result);
  }
  PQfinish(conn);
  return ok;
}

}  // namespace topicbridge::testing
