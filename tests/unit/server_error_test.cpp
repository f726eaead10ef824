// pg::ExplainServerError: the server texts met at start-up turn into one line naming the
// problem and what to do, and the ones a retry cannot fix are marked permanent. The texts are
// PostgreSQL 15's, verbatim; cases a test server cannot produce (wal2json missing) live here.
#include "../../src/pg/server_error.h"

#include <doctest/doctest.h>

#include <string>

namespace topicbridge::pg {
namespace {

bool Has(const ExplainedError& e, const std::string& part) {
  return e.message.find(part) != std::string::npos;
}

TEST_CASE("wal2json missing on the server is permanent and says to install it") {
  const auto e = ExplainServerError(
      "creating replication slot topicbridge",
      "ERROR:  could not access file \"wal2json\": No such file or directory\n", "topicbridge");
  CHECK(e.permanent);
  CHECK_MESSAGE(Has(e, "wal2json output plugin is not installed"), e.message);
  CHECK_MESSAGE(Has(e, "postgresql-15-wal2json"), e.message);
  CHECK(e.message.find('\n') == std::string::npos);
}

TEST_CASE("wal2json not allowed is permanent and names output_plugin_libraries") {
  const auto e = ExplainServerError(
      "creating replication slot s",
      "ERROR:  library \"wal2json\" may not be used as an output plugin\nHINT:  If it is safe "
      "for all REPLICATION users to use this library as an output plugin, add it to "
      "\"output_plugin_libraries\" and reload the server configuration.\n",
      "s");
  CHECK(e.permanent);
  CHECK_MESSAGE(Has(e, "output_plugin_libraries = 'wal2json'"), e.message);
  CHECK(e.message.find('\n') == std::string::npos);
}

TEST_CASE("a slot held by another walsender is temporary: the standby waits for it") {
  const auto e = ExplainServerError("starting replication from slot s",
                                    "ERROR:  replication slot \"s\" is active for PID 4242\n", "s");
  CHECK_FALSE(e.permanent);
  CHECK_MESSAGE(Has(e, "standing by, taking over when it is free"), e.message);
}

TEST_CASE("an unreachable server is temporary; a wrong password is not") {
  const auto refused = ExplainServerError(
      "connecting to PostgreSQL at 127.0.0.1:1",
      "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the "
      "server running on that host and accepting TCP/IP connections?\n",
      "s");
  CHECK_FALSE(refused.permanent);
  CHECK_MESSAGE(Has(refused, "PostgreSQL is unreachable: check host and port in postgres.dsn"),
                refused.message);
  const auto password = ExplainServerError(
      "connecting to PostgreSQL at 127.0.0.1:5432",
      "connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication "
      "failed for user \"postgres\"\n",
      "s");
  CHECK(password.permanent);
  CHECK_MESSAGE(Has(password, "wrong password for the database user"), password.message);
}

}  // namespace
}  // namespace topicbridge::pg
