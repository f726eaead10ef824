// Error explanations for the replication connection. Matching is on the English server text
// (SQLSTATEs do not tell these cases apart: several share 55000 or 58P01).
#include "server_error.h"

namespace topicbridge::pg {
namespace {

bool Has(std::string_view text, std::string_view part) {
  return text.find(part) != std::string_view::npos;
}

struct Rule {
  std::string_view needle;
  std::string_view also;  // must appear too, when not empty
  bool permanent;
  const char* advice;  // {slot} is replaced by the slot name
};

// First match wins; order from the most specific text.
constexpr Rule kRules[] = {
    {"may not be used as an output plugin", "", true,
     "the server refuses wal2json as an output plugin: add it to output_plugin_libraries "
     "(output_plugin_libraries = 'wal2json' in postgresql.conf) and reload PostgreSQL"},
    {"could not access file \"wal2json\"", "", true,
     "the wal2json output plugin is not installed on the PostgreSQL server: install it "
     "(Debian: postgresql-15-wal2json) and retry"},
    {"wal_level", "", true,
     "logical decoding needs wal_level = logical: set it in postgresql.conf and restart "
     "PostgreSQL"},
    {"has been invalidated", "", true,
     "replication slot \"{slot}\" was invalidated: it fell behind max_slot_wal_keep_size and "
     "the WAL it needed is gone, so changes were lost from it. Drop it "
     "(SELECT pg_drop_replication_slot('{slot}')) and start again; topicbridge creates a new "
     "slot at the current position. See docs/operations.md"},
    {"is active for PID", "", false,
     "replication slot \"{slot}\" is in use by another process: standing by, taking over when "
     "it is free (if no other topicbridge should hold it: stop the process of "
     "pg_replication_slots.active_pid or set postgres.slot to another name)"},
    {"password authentication failed", "", true,
     "wrong password for the database user: fix the password in postgres.dsn (or PGPASSWORD, "
     "~/.pgpass)"},
    {"no password supplied", "", true,
     "the server requires a password: add password=... to postgres.dsn (or PGPASSWORD, "
     "~/.pgpass)"},
    {"no pg_hba.conf entry", "", true,
     "pg_hba.conf does not allow this connection: add a host line for this user and database "
     "and reload PostgreSQL"},
    {"must be superuser or replication role", "", true,
     "the database user may not start replication: ALTER ROLE <user> REPLICATION (or use a "
     "superuser)"},
    {"permission denied to start WAL sender", "", true,
     "the database user may not start replication: ALTER ROLE <user> REPLICATION (or use a "
     "superuser)"},
    {"all replication slots are in use", "", true,
     "no free replication slot: raise max_replication_slots (restart needed) or drop unused "
     "slots"},
    {"exceeds max_wal_senders", "", false,
     "too many replication connections: raise max_wal_senders (restart needed) or stop other "
     "consumers"},
    {"database \"", "does not exist", true,
     "the database does not exist: check dbname in postgres.dsn"},
    {"role \"", "does not exist", true,
     "the database user does not exist: check user in postgres.dsn"},
    {"Connection refused", "", false,
     "PostgreSQL is unreachable: check host and port in postgres.dsn and that the server is "
     "running and listening there"},
    {"could not translate host name", "", false,
     "PostgreSQL is unreachable: the host name in postgres.dsn does not resolve"},
    {"timeout expired", "", false,
     "PostgreSQL is unreachable: no answer within connect_timeout; check host, port and "
     "firewalls"},
    {"No such file or directory", "", false,
     "PostgreSQL is unreachable: no server socket there; check host/port in postgres.dsn and "
     "that the server is running"},
    {"server closed the connection", "", false, "the server closed the connection; will retry"},
};

std::string WithSlot(std::string_view advice, std::string_view slot) {
  std::string out(advice);
  for (std::size_t at = out.find("{slot}"); at != std::string::npos;
       at = out.find("{slot}", at + slot.size()))
    out.replace(at, 6, slot);
  return out;
}

}  // namespace

std::string OneLine(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool in_break = false;
  for (const char c : text) {
    if (c == '\n' || c == '\r') {
      in_break = true;
    } else if (in_break && (c == ' ' || c == '\t')) {
      continue;
    } else {
      if (in_break && !out.empty()) out += ' ';
      in_break = false;
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

ExplainedError ExplainServerError(std::string_view step, std::string_view server_text,
                                  std::string_view slot) {
  const std::string text = OneLine(server_text);
  for (const Rule& rule : kRules) {
    if (Has(text, rule.needle) && Has(text, rule.also)) {
      return {
          std::string(step) + ": " + WithSlot(rule.advice, slot) + " (server said: " + text + ")",
          rule.permanent};
    }
  }
  return {std::string(step) + ": " + text, false};
}

}  // namespace topicbridge::pg
