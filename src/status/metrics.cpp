#include "topicbridge/metrics.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <string_view>

namespace topicbridge {

namespace {

// Label values escape backslash, double quote and newline (exposition format 0.0.4).
std::string EscapeLabel(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string FormatNumber(double value) {
  char text[64];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

std::string FormatNumber(std::uint64_t value) { return std::to_string(value); }
std::string FormatNumber(std::int64_t value) { return std::to_string(value); }

class Exposition {
 public:
  void Family(std::string_view name, std::string_view type, std::string_view help) {
    current_ = "topicbridge_";
    current_ += name;
    out_ += "# HELP " + current_ + " ";
    out_ += help;
    out_ += "\n# TYPE " + current_ + " ";
    out_ += type;
    out_ += "\n";
  }

  // `labels` is already rendered, e.g. destination="basic",kind="..."; empty: none.
  template <typename Number>
  void Sample(const std::string& labels, Number value) {
    out_ += current_;
    if (!labels.empty()) out_ += "{" + labels + "}";
    out_ += " " + FormatNumber(value) + "\n";
  }

  std::string Take() { return std::move(out_); }

 private:
  std::string out_;
  std::string current_;
};

std::int64_t ResidentMemoryBytes() {
  std::ifstream statm("/proc/self/statm");
  long long total_pages = 0, resident_pages = 0;
  if (!(statm >> total_pages >> resident_pages)) return 0;
  return static_cast<std::int64_t>(resident_pages) * sysconf(_SC_PAGESIZE);
}

void RenderDestinations(const StatusRegistry& registry, Exposition& out) {
  struct Family {
    const char* name;
    const char* type;
    const char* help;
    std::function<std::int64_t(const DestinationStatus&, const DestinationCounters&)> value;
  };
  const Family families[] = {
      {"destination_messages_delivered_total", "counter",
       "Messages accepted by the broker (acknowledged for at-least-once kinds).",
       [](auto&, auto& c) { return static_cast<std::int64_t>(c.delivered); }},
      {"destination_messages_lost_total", "counter",
       "Best-effort messages given up (queue full, broker error).",
       [](auto&, auto& c) { return static_cast<std::int64_t>(c.lost); }},
      {"destination_delivery_attempts_failed_total", "counter",
       "Failed delivery attempts (at-least-once messages are retried).",
       [](auto&, auto& c) { return static_cast<std::int64_t>(c.delivery_attempts); }},
      {"destination_errors_total", "counter", "Errors recorded for the destination.",
       [](auto&, auto& c) { return static_cast<std::int64_t>(c.errors); }},
      {"destination_messages_queued", "gauge", "Messages waiting in topicbridge's queue.",
       [](auto&, auto& c) { return c.queued; }},
      {"destination_messages_in_flight", "gauge",
       "Messages handed to the broker client and not yet completed.",
       [](auto&, auto& c) { return c.in_flight; }},
      {"destination_connected", "gauge", "1 while the broker connection is up.",
       [](auto& d, auto&) { return static_cast<std::int64_t>(d.Connected() ? 1 : 0); }},
  };
  std::vector<std::pair<const DestinationStatus*, DestinationCounters>> rows;
  for (const DestinationStatus* d : registry.Destinations()) rows.emplace_back(d, d->Counters());
  for (const Family& family : families) {
    out.Family(family.name, family.type, family.help);
    for (const auto& [d, counters] : rows) {
      out.Sample(
          "destination=\"" + EscapeLabel(d->id()) + "\",kind=\"" + EscapeLabel(d->kind()) + "\"",
          family.value(*d, counters));
    }
  }
}

void RenderTopicsAndTables(const StatusRegistry& registry, Exposition& out) {
  const auto topics = registry.Topics();
  out.Family("topic_events_matched_total", "counter", "Events that matched a topic trigger.");
  for (const auto& [url, c] : topics) {
    out.Sample("topic=\"" + EscapeLabel(url) + "\"", c->events_matched.load());
  }
  out.Family("topic_fhirpath_errors_total", "counter",
             "FHIRPath criteria evaluations that failed (the event did not match).");
  for (const auto& [url, c] : topics) {
    out.Sample("topic=\"" + EscapeLabel(url) + "\"", c->fhirpath_errors.load());
  }
  out.Family("table_changes_decoded_total", "counter", "Row changes decoded from the slot.");
  for (const auto& [table, c] : registry.Tables()) {
    out.Sample("table=\"" + EscapeLabel(table) + "\"", c->changes_decoded.load());
  }
}

void RenderReplication(const ReplicationGauges& r, Exposition& out) {
  out.Family("slot_lag_bytes", "gauge",
             "WAL bytes between the server's current position and the slot's confirmed position.");
  out.Sample("", r.slot_lag_bytes.load());
  out.Family("slot_lag_alarm_threshold_bytes", "gauge",
             "postgres.slot_lag_alarm_bytes: slot lag that raises the alarm (0: alarm off).");
  out.Sample("", r.slot_lag_alarm_threshold_bytes.load());
  out.Family("slot_lag_alarm", "gauge", "1 while the slot lag is at or over the alarm threshold.");
  out.Sample("", static_cast<std::int64_t>(r.slot_lag_alarm.load() ? 1 : 0));
  out.Family("replication_last_received_lsn", "gauge", "Last WAL position received, as a number.");
  out.Sample("", r.last_received_lsn.load());
  out.Family("replication_last_confirmed_lsn", "gauge",
             "Last WAL position confirmed to the server (flush), as a number.");
  out.Sample("", r.last_confirmed_lsn.load());
  out.Family("replication_seconds_since_last_message", "gauge",
             "Seconds since the last replication message (-1: none yet).");
  out.Sample("", r.SecondsSinceLastMessage());
  out.Family("replication_reconnects_total", "counter",
             "Replication connection re-establishments.");
  out.Sample("", r.reconnects.load());
  out.Family("replication_connected", "gauge", "1 while the replication connection is streaming.");
  out.Sample("", static_cast<std::int64_t>(r.connected.load() ? 1 : 0));
  out.Family("replication_changes_unprocessable_total", "counter",
             "Changes that could not be decoded or mapped to a resource (logged with their LSN).");
  out.Sample("", r.changes_unprocessable.load());
  out.Family("replication_halted", "gauge",
             "1 while the stream is halted before a change an at-least-once destination could "
             "want.");
  out.Sample("", static_cast<std::int64_t>(r.halted.load() ? 1 : 0));
}

}  // namespace

std::string RenderPrometheus(const StatusRegistry& registry) {
  Exposition out;
  RenderDestinations(registry, out);
  RenderTopicsAndTables(registry, out);
  RenderReplication(registry.replication(), out);
  out.Family("process_resident_memory_bytes", "gauge", "Resident set size of the process.");
  out.Sample("", ResidentMemoryBytes());
  out.Family("process_start_time_seconds", "gauge", "Start time of the process, unix seconds.");
  out.Sample("", registry.start_time_seconds());
  return out.Take();
}

}  // namespace topicbridge
