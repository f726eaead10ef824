#include "bridge.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "database_resolver.h"
#include "slot_monitor.h"
#include "stored_resources.h"
#include "topicbridge/destination_queue.h"
#include "topicbridge/http_server.h"
#include "topicbridge/lsn_tracker.h"
#include "topicbridge/notification.h"
#include "topicbridge/replication_stream.h"
#include "topicbridge/row_mapper.h"
#include "topicbridge/sink_factory.h"
#include "topicbridge/status_registry.h"
#include "topicbridge/topic_matcher.h"
#include "topicbridge/unprocessable_policy.h"
#include "topicbridge/wal2json_decoder.h"

namespace topicbridge {

namespace {
using namespace std::chrono_literals;

// On stop, how long the reader may go on to the commit of an open transaction
// (never longer than delivery.drain_timeout_ms).
constexpr std::chrono::milliseconds kFinishTransaction{5000};

const Parameter* Subject(const DestinationConfig& d) {
  if (const auto* p = d.Find("subject")) return p;
  return d.Find("kafkaTopic");
}
}  // namespace

struct Destination {
  DestinationConfig config;
  std::string fingerprint;  // what, if changed, needs a new sink
  DestinationStatus* status = nullptr;
  std::unique_ptr<Sink> sink;
  std::unique_ptr<DestinationQueue> queue;
  std::string subject;
  bool key_by_resource_id = false;
  std::uint64_t event_number = 0;

  // The sink completes what is still in flight when it goes, into the queue:
  // stop the queue's retries, then the sink, then the queue.
  ~Destination() {
    if (queue) queue->Close();
    sink.reset();
  }
};

struct Bridge::State {
  Config config;
  StatusRegistry registry;
  LsnTracker tracker;
  std::unique_ptr<TopicMatcher> matcher;
  AidboxToFhir converter;
  std::unique_ptr<DatabaseResolver> resolver;
  std::unique_ptr<RowMapper> mapper;
  std::vector<std::unique_ptr<Destination>> destinations;
  std::vector<std::vector<Destination*>> by_topic;  // matcher topic index → destinations
  std::vector<TopicCounters*> topic_counters;       // matcher topic index → its counters
  std::unique_ptr<HttpServer> http;
  std::unique_ptr<ReplicationStream> stream;
  std::unique_ptr<SlotMonitor> slot_monitor;

  // Pipeline-thread scratch, reused for every change.
  Wal2JsonDecoder decoder;
  Change change;
  ResourceEvent event;
  std::vector<std::size_t> matched;
  JsonWriter writer;
  std::string error;
  // Bundle timestamps have millisecond precision: formatted once per millisecond, not per
  // notification (NowIso8601 was ~2,300 instructions a call).
  std::string timestamp;
  std::int64_t timestamp_ms = -1;
  const std::string& BundleTimestamp();
  LsnTracker::Ticket ticket = 0;
  Lsn commit_lsn = 0;
  std::unordered_map<std::string, TableCounters*> tables;
  const std::atomic<bool>* stop = nullptr;  // set by Run

  // A change that cannot be decoded or mapped is skipped (logged with its LSN,
  // counted) only when no at-least-once destination could want it; otherwise
  // the stream halts before its transaction and retries every kHaltRetry, so
  // at-least-once never loses an event silently (docs/operations.md).
  static constexpr std::chrono::seconds kHaltRetry{30};
  UnprocessablePolicy unprocessable;
  Lsn transaction_end = 0;        // next_lsn of the open transaction, else 0
  Lsn halted_end = 0;             // next_lsn of the transaction halted before
  bool halt_pending = false;      // Unprocessable asked Run to Halt
  std::string halt;               // why; empty while streaming
  mutable std::mutex halt_mutex;  // guards `halt` against /readyz
  std::string connect_failure;    // the last failed replication connect; empty once streaming
  mutable std::mutex connect_failure_mutex;  // guards it against /readyz
  void Unprocessable(std::string_view table, std::string_view what);
  // Drains, confirms what precedes the halted transaction, disconnects and waits.
  void Halt(const std::atomic<bool>& stop);
  Readiness Ready() const;
  // While a full at-least-once window blocks the reader: report what is
  // acknowledged meanwhile and keep the walsender from timing the connection
  // out (wal_sender_timeout); give up on stop or a lost connection.
  DestinationQueue::WaitHook keep_alive = [this] {
    stream->Confirm(tracker.Confirmable());
    return stream->SendStatus().ok() && !stop->load();
  };

  // Topics and destinations from Aidbox's tables (aidbox.topics_from_database).
  StoredResources stored;
  bool stored_changed = false;  // in the current transaction
  bool tables_changed = false;  // the stream must restart with other add-tables
  bool submit_refused = false;  // an at-least-once message of this transaction was not taken

  void HandleChange();
  void Notify(Destination& d, const MatcherTopic& topic);
  // (Re)builds matcher, row mapper and destinations from the file's and the
  // stored resources; keeps destinations whose configuration is unchanged.
  void Rebuild();
  std::unique_ptr<Destination> MakeDestination(const DestinationConfig& d);
  std::vector<std::string> Tables() const;
  // Logs shapes the Aidbox-to-FHIR conversion passed through unchanged: the
  // first few with their paths, then a count every 1000.
  void ReportConversionWarnings();
  std::uint64_t conversion_warnings_logged = 0;
  // Reads Aidbox's topic and destination tables, retrying until `stop`.
  bool LoadStored(const std::atomic<bool>& stop);
  TableCounters& Table(std::string_view name) {
    auto it = tables.find(std::string(name));
    if (it == tables.end())
      it = tables.emplace(std::string(name), &registry.Table(std::string(name))).first;
    return *it->second;
  }
};

Bridge::Bridge(Config config) : state_(std::make_unique<State>()) {
  state_->config = std::move(config);
}

Bridge::~Bridge() = default;

std::vector<ConfigProblem> Bridge::Prepare() {
  State& s = *state_;
  std::vector<ConfigProblem> problems;
  TopicMatcher check(s.config.topics, &problems);
  for (const auto& d : s.config.destinations) {
    auto found = ValidateSinkParameters(d);
    problems.insert(problems.end(), found.begin(), found.end());
  }
  if (problems.empty()) s.Rebuild();
  return problems;
}

namespace {

// Everything of a destination that its sink and queue were built from.
std::string Fingerprint(const DestinationConfig& d) {
  std::string f = d.kind + '\n' + d.topic + '\n' + d.content + '\n' +
                  std::to_string(d.include_entry_action) + std::to_string(d.include_version_id) +
                  std::to_string(d.include_version_id_in_focus_reference);
  for (const auto& p : d.parameters)
    f += '\n' + p.name + '=' + p.value_type + ':' + p.text + ':' + std::to_string(p.integer) + ':' +
         std::to_string(p.boolean);
  return f;
}

}  // namespace

std::unique_ptr<Destination> Bridge::State::MakeDestination(const DestinationConfig& d) {
  auto dest = std::make_unique<Destination>();
  dest->config = d;
  dest->fingerprint = Fingerprint(d);
  dest->status = &registry.AddDestination(d.id, d.kind, d.topic);
  if (const auto* subject = Subject(d)) dest->subject = subject->text;
  if (const auto* key = d.Find("keyByResourceId")) dest->key_by_resource_id = key->boolean;
  DestinationStatus* status = dest->status;
  const std::string id = d.id;
  SinkEvents events;
  events.on_connection = [status, id](bool up) {
    status->SetConnected(up);
    if (up)
      spdlog::info("destination {}: connected", id);
    else
      spdlog::warn("destination {}: disconnected", id);
  };
  events.on_error = [status, id](const std::string& text) {
    status->RecordError(text);
    spdlog::error("destination {}: {}", id, text);
  };
  DeliveryLimits limits;
  limits.max_in_flight =
      d.AtLeastOnce() ? config.delivery.at_least_once_window : config.delivery.best_effort_queue;
  dest->sink = MakeSink(d, std::move(events), limits.max_in_flight);
  dest->queue = std::make_unique<DestinationQueue>(dest->sink.get(), dest->status,
                                                   d.AtLeastOnce() ? &tracker : nullptr, limits);
  return dest;
}

void Bridge::State::Rebuild() {
  // Topics: the file's, then the stored ones whose url the file does not use.
  std::vector<TopicConfig> topics = config.topics;
  for (auto& t : stored.Topics()) {
    const bool taken = std::any_of(topics.begin(), topics.end(),
                                   [&](const TopicConfig& x) { return x.url == t.url; });
    if (taken)
      spdlog::error("{}: left out, the config file already has a topic with url {}", t.path, t.url);
    else
      topics.push_back(std::move(t));
  }
  std::vector<ConfigProblem> problems;
  auto next_matcher = std::make_unique<TopicMatcher>(topics, &problems);
  for (const auto& p : problems) spdlog::error("topic left out: {}", p.ToString());

  std::vector<DestinationConfig> wanted = config.destinations;
  for (auto& d : stored.Destinations()) {
    auto found = ValidateSinkParameters(d);
    const bool known_topic =
        std::any_of(next_matcher->topics().begin(), next_matcher->topics().end(),
                    [&](const MatcherTopic& t) { return t.url == d.topic; });
    if (!known_topic) found.push_back({d.path + ".topic", "no active topic has url " + d.topic});
    if (std::any_of(wanted.begin(), wanted.end(), [&](auto& x) { return x.id == d.id; }))
      found.push_back({d.path + ".id", "the config file already has destination " + d.id});
    for (const auto& p : found) spdlog::error("destination left out: {}", p.ToString());
    if (found.empty()) wanted.push_back(std::move(d));
  }

  // Keep unchanged destinations (their queues, sinks and event numbers); drain the rest.
  std::vector<std::unique_ptr<Destination>> next;
  for (const auto& d : wanted) {
    auto same = std::find_if(destinations.begin(), destinations.end(), [&](const auto& x) {
      return x && x->config.id == d.id && x->fingerprint == Fingerprint(d);
    });
    if (same != destinations.end()) {
      next.push_back(std::move(*same));
    } else {
      next.push_back(MakeDestination(d));
      if (stream) spdlog::info("destination {}: started", d.id);
    }
  }
  for (auto& gone : destinations) {
    if (!gone) continue;
    gone->queue->Drain(std::chrono::milliseconds(config.delivery.drain_timeout_ms));
    spdlog::info("destination {}: stopped", gone->config.id);
  }
  destinations = std::move(next);
  unprocessable.Clear();
  for (const auto& d : destinations) {
    if (!d->config.AtLeastOnce()) continue;
    for (const auto& t : topics)
      if (t.url == d->config.topic)
        for (const auto& trigger : t.triggers) unprocessable.AddAtLeastOnceType(trigger.resource);
  }

  by_topic.assign(next_matcher->topics().size(), {});
  for (auto& d : destinations)
    for (std::size_t t = 0; t < next_matcher->topics().size(); ++t)
      if (next_matcher->topics()[t].url == d->config.topic) by_topic[t].push_back(d.get());
  // Looked up once here: the registry's map takes a lock, the event path must not.
  topic_counters.clear();
  for (const auto& t : next_matcher->topics()) topic_counters.push_back(&registry.Topic(t.url));

  const auto old_tables = mapper ? Tables() : std::vector<std::string>{};
  matcher = std::move(next_matcher);
  if (!resolver)
    resolver =
        std::make_unique<DatabaseResolver>(config.postgres.dsn, config.postgres.schema, &converter);
  matcher->set_resolver(resolver.get());
  mapper = std::make_unique<RowMapper>(matcher->TableTypes(), &converter);
  tables_changed = mapper && !old_tables.empty() && Tables() != old_tables;
}

void Bridge::State::ReportConversionWarnings() {
  const ConversionStats& stats = mapper->conversion_stats();
  const std::uint64_t total = conversion_warnings_logged + stats.warnings;
  if (stats.warnings == 0) return;
  if (conversion_warnings_logged < ConversionStats::kMaxSamples) {
    for (const auto& sample : stats.samples)
      spdlog::warn("{}/{}: passed through unconverted (not a shape of the FHIR R4 model): {}",
                   event.resource_type, event.id, sample);
  } else if (total / 1000 != conversion_warnings_logged / 1000) {
    spdlog::warn("{} shapes passed through unconverted so far (not shapes of the FHIR R4 model)",
                 total);
  }
  conversion_warnings_logged = total;
  mapper->ClearConversionStats();
}

bool Bridge::State::LoadStored(const std::atomic<bool>& stop) {
  for (auto wait = 500ms; !stop; wait = std::min(wait * 2, std::chrono::milliseconds(30000))) {
    try {
      stored.Load(config.postgres.dsn, config.postgres.schema);
      spdlog::info("loaded {} topics and {} destinations from Aidbox's tables ({} left out)",
                   stored.Topics().size(), stored.Destinations().size(), stored.Problems().size());
      Rebuild();
      return true;
    } catch (const std::exception& e) {
      spdlog::warn("cannot read topics and destinations from the database: {} (retrying)",
                   e.what());
    }
    for (auto slept = 0ms; slept < wait && !stop; slept += 100ms)
      std::this_thread::sleep_for(100ms);
  }
  return false;
}

std::vector<std::string> Bridge::State::Tables() const {
  auto tables = mapper->TablesToDecode(config.postgres.schema);
  if (config.topics_from_database) {
    tables.push_back(config.postgres.schema + "." + StoredResources::kTopicTable);
    tables.push_back(config.postgres.schema + "." + StoredResources::kDestinationTable);
  }
  std::sort(tables.begin(), tables.end());
  tables.erase(std::unique(tables.begin(), tables.end()), tables.end());
  return tables;
}

const std::string& Bridge::State::BundleTimestamp() {
  const std::int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
  if (now_ms != timestamp_ms) {
    timestamp_ms = now_ms;
    timestamp = NowIso8601();
  }
  return timestamp;
}

void Bridge::State::Notify(Destination& d, const MatcherTopic& topic) {
  NotificationTarget target{topic.url,
                            d.config.id,
                            d.subject,
                            d.config.content,
                            config.aidbox_base_url,
                            d.config.include_entry_action,
                            d.config.include_version_id,
                            d.config.include_version_id_in_focus_reference};
  const std::string& body =
      BuildNotification(event, target, ++d.event_number, BundleTimestamp(), &writer);
  OutboundMessage message;
  message.subject = d.subject;
  message.body = body;
  if (d.key_by_resource_id) message.key = event.id;
  if (d.queue->at_least_once()) {
    // Stable across replays, whatever tables are decoded: the change's own WAL
    // position. JetStream's duplicate window drops a resend; Kafka consumers can.
    message.msg_id = d.config.id + ":" + FormatLsn(commit_lsn) + ":" + FormatLsn(change.lsn);
    if (!d.queue->Submit(std::move(message), ticket, keep_alive)) submit_refused = true;
  } else {
    d.queue->Offer(std::move(message));
  }
}

void Bridge::State::HandleChange() {
  switch (change.kind) {
    case ChangeKind::kBegin:
      ticket = tracker.BeginTransaction();
      submit_refused = false;
      commit_lsn = change.lsn;
      transaction_end = change.next_lsn;
      mapper->BeginTransaction();
      return;
    case ChangeKind::kCommit:
      tracker.CommitTransaction(ticket, change.next_lsn);
      transaction_end = 0;
      if (halted_end != 0 && change.next_lsn > halted_end) {
        spdlog::info("replication: resumed past the transaction ending at {}",
                     FormatLsn(halted_end));
        halted_end = 0;
        registry.replication().halted = false;
        std::lock_guard lock(halt_mutex);
        halt.clear();
      }
      if (stored_changed) {
        stored_changed = false;
        Rebuild();
      }
      return;
    case ChangeKind::kInsert:
    case ChangeKind::kUpdate:
    case ChangeKind::kDelete:
      break;
    default:
      return;
  }
  Table(change.table).changes_decoded.fetch_add(1, std::memory_order_relaxed);
  if (config.topics_from_database && StoredResources::Concerns(change)) {
    stored_changed = stored.Apply(change) || stored_changed;
    return;
  }
  const auto outcome = mapper->Map(change, &event, &error);
  if (outcome == RowMapper::Outcome::kError) {
    Unprocessable(change.table, error);
    return;
  }
  if (outcome != RowMapper::Outcome::kEvent) return;
  resolver->Forget(event.resource_type, event.id);
  ReportConversionWarnings();
  const auto on_error = [this](const CriteriaError& e) {
    topic_counters[e.topic - matcher->topics().data()]->fhirpath_errors.fetch_add(
        1, std::memory_order_relaxed);
    if (e.first_for_topic)
      spdlog::warn("topic {}: criteria '{}' failed on {}/{}: {} (counted from now on, logged once)",
                   e.topic->url, *e.expression, event.resource_type, event.id, e.message);
  };
  if (!matcher->Match(event, &matched, on_error, &error)) {
    Unprocessable(change.table, error);
    return;
  }
  for (std::size_t t : matched) {
    const MatcherTopic& topic = matcher->topics()[t];
    topic_counters[t]->events_matched.fetch_add(1, std::memory_order_relaxed);
    for (Destination* d : by_topic[t]) Notify(*d, topic);
  }
}

void Bridge::State::Unprocessable(std::string_view table, std::string_view what) {
  registry.replication().changes_unprocessable.fetch_add(1, std::memory_order_relaxed);
  const std::string at = "lsn " + FormatLsn(stream->last_received());
  // The resource type of the table (or its _history); unknown for an undecodable message.
  std::string type;
  if (!table.empty() && matcher) {
    std::string name(table);
    if (name.ends_with("_history")) name.resize(name.size() - 8);
    const auto types = matcher->TableTypes();
    if (auto it = types.find(name); it != types.end()) type = it->second;
  }
  if (!unprocessable.MustHalt(type)) {
    spdlog::error(
        "{}: {}; skipped: no at-least-once destination takes {} (counted in "
        "topicbridge_replication_changes_unprocessable_total)",
        at, what, type.empty() ? std::string("it") : type + " changes");
    return;
  }
  const std::string end = transaction_end != 0 ? FormatLsn(transaction_end) : std::string();
  std::string reason = at + ": " + std::string(what) +
                       ". An at-least-once destination could want this change and skipping it "
                       "would lose it, so the stream stops before its transaction";
  if (!end.empty())
    reason +=
        "; to skip that whole transaction on purpose, stop topicbridge and run SELECT "
        "pg_replication_slot_advance('" +
        config.postgres.slot + "', '" + end + "'), then start it";
  reason += "; retrying every " + std::to_string(kHaltRetry.count()) + " s";
  {
    std::lock_guard lock(halt_mutex);
    halt = reason;
  }
  halted_end = transaction_end != 0 ? transaction_end : stream->last_received();
  halt_pending = true;
  registry.replication().halted = true;
  spdlog::critical("replication halted at {}", reason);
  for (auto& d : destinations)
    if (d->config.AtLeastOnce()) d->status->RecordError("replication halted at " + reason);
}

void Bridge::State::Halt(const std::atomic<bool>& stop) {
  // What came before the halted transaction may still be acknowledged: confirm it, so a
  // retry does not send it again.
  tracker.AbortOpenTransaction();
  const auto timeout = std::chrono::milliseconds(config.delivery.drain_timeout_ms);
  for (auto& d : destinations) d->queue->Drain(timeout);
  stream->Confirm(tracker.Confirmable());
  stream->Close();  // releases the slot, e.g. for pg_replication_slot_advance
  registry.replication().connected = false;
  for (auto waited = 0ms; waited < kHaltRetry && !stop; waited += 100ms)
    std::this_thread::sleep_for(100ms);
}

Readiness Bridge::State::Ready() const {
  {
    std::lock_guard lock(halt_mutex);
    if (!halt.empty()) return {false, "replication halted at " + halt};
  }
  if (!registry.replication().connected.load()) {
    std::lock_guard lock(connect_failure_mutex);
    if (!connect_failure.empty())
      return {false, "replication not connected (last error: " + connect_failure + ")"};
  }
  return DefaultReadiness(registry);
}

void Bridge::Interrupt() {
  for (auto& d : state_->destinations) d->queue->Stop();
}

int Bridge::Run(const std::atomic<bool>& stop) {
  State& s = *state_;
  s.stop = &stop;
  HttpServerOptions http_options;
  http_options.listen = s.config.http.listen;
  http_options.bearer_token = s.config.http.bearer_token;
  http_options.readiness = [&s] { return s.Ready(); };
  s.http = std::make_unique<HttpServer>(s.registry, http_options);
  s.http->Start();
  spdlog::info("http: listening on {}", s.config.http.listen);

  if (s.config.topics_from_database && !s.LoadStored(stop)) return 0;
  ReplicationOptions options;
  options.dsn = s.config.postgres.dsn;
  options.slot = s.config.postgres.slot;
  options.tables = s.Tables();
  // A standby waiting for the slot takes over within seconds of the active
  // instance's end, and a restarted database is found again as fast.
  options.backoff_max = std::chrono::milliseconds(5000);
  options.on_connect_failure = [&s](const std::string& message) {
    std::lock_guard lock(s.connect_failure_mutex);
    s.connect_failure = message;
  };
  s.stream = std::make_unique<ReplicationStream>(options);
  s.slot_monitor = std::make_unique<SlotMonitor>(
      s.config.postgres.dsn, s.config.postgres.slot, s.config.postgres.slot_lag_alarm_bytes,
      std::chrono::milliseconds(s.config.postgres.slot_lag_poll_ms), &s.registry.replication());
  s.slot_monitor->Start();
  ReplicationGauges& gauges = s.registry.replication();

  bool first = true;
  bool restart = false;  // a new table set: reconnect at once, without backoff
  while (!stop) {
    const auto connected =
        first || restart ? s.stream->Connect() : s.stream->ConnectWithBackoff(stop);
    restart = false;
    if (!connected.ok()) {
      if (stop) break;
      if (connected.permanent) {
        spdlog::critical("{}", connected.message);
        return 2;
      }
      // Not logged here: ConnectWithBackoff retries at once and logs it as attempt 1.
      first = false;
      continue;
    }
    if (!first && !restart) gauges.reconnects.fetch_add(1);
    first = false;
    gauges.connected = true;
    {
      std::lock_guard lock(s.connect_failure_mutex);
      s.connect_failure.clear();
    }
    spdlog::info("replication: streaming from slot {} ({} tables)", options.slot,
                 options.tables.size());
    // Stopped inside a transaction, the reader goes on to its commit (its C record is
    // usually already in the socket): what was delivered of it is then confirmed and
    // not sent again after the restart. Bounded, and not for a transaction whose
    // messages the full window turned away: those are replayed anyway.
    std::optional<std::chrono::steady_clock::time_point> finish_by;
    const auto keep_reading = [&] {
      if (!stop) return true;
      if (!s.tracker.InTransaction() || s.submit_refused) return false;
      const auto now = std::chrono::steady_clock::now();
      if (!finish_by) {
        const auto bound = std::min<std::chrono::milliseconds>(
            kFinishTransaction, std::chrono::milliseconds(s.config.delivery.drain_timeout_ms));
        finish_by = now + bound;
        spdlog::info("stopping: reading the open transaction to its commit (at most {} ms)",
                     bound.count());
      }
      return now < *finish_by;
    };
    while (keep_reading()) {
      std::string_view message;
      const auto status = s.stream->Next(&message, 200ms);
      if (status.code == ReplicationStatus::kDisconnected) {
        spdlog::warn("replication: {}", status.message);
        s.tracker.AbortOpenTransaction();
        break;
      }
      gauges.MarkMessageReceived();
      if (status.code == ReplicationStatus::kOk) {
        if (auto decoded = s.decoder.Decode(message, &s.change); !decoded.ok()) {
          s.Unprocessable({}, "wal2json message not understood: " + decoded.error);
        } else {
          s.HandleChange();
        }
        if (s.halt_pending) {
          s.halt_pending = false;
          s.Halt(stop);
          restart = true;
          break;
        }
      }
      if (s.tables_changed) {
        // wal2json's add-tables is fixed per START_REPLICATION: resume from
        // the confirmed LSN with the new table set.
        s.tables_changed = false;
        s.stream->Confirm(s.tracker.Confirmable());
        s.stream->Close();
        options.tables = s.Tables();
        s.stream = std::make_unique<ReplicationStream>(options);
        spdlog::info("replication: restarting with {} tables", options.tables.size());
        restart = true;
        break;
      }
      s.stream->Confirm(s.tracker.Confirmable());
      if (status.code == ReplicationStatus::kTimeout && s.tracker.Idle()) s.stream->ConfirmIdle();
      gauges.last_received_lsn = s.stream->last_received();
      gauges.last_confirmed_lsn = s.stream->confirmed();
    }
    gauges.connected = false;
  }

  // Drain: what is in flight may still be acknowledged and confirmed.
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(s.config.delivery.drain_timeout_ms);
  for (bool drained = false; !drained;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    drained = true;
    for (auto& d : s.destinations)
      drained = d->queue->Drain(std::clamp(left, 0ms, 200ms)) && drained;
    // Confirm as acknowledgements come, and keep the connection alive meanwhile.
    s.stream->Confirm(s.tracker.Confirmable());
    if (s.stream->connected()) s.stream->SendStatus();
    if (left <= 0ms) break;
  }
  for (auto& d : s.destinations) {
    if (d->queue->in_flight() > 0)
      spdlog::warn(
          "destination {}: {} messages still in flight at shutdown; they will be sent "
          "again on restart",
          d->config.id, d->queue->in_flight());
  }
  s.stream->Close();
  for (auto& d : s.destinations) {
    d->queue->Stop();
    d->sink->Flush(1000ms);
  }
  s.slot_monitor->Stop();
  s.http->Stop();
  spdlog::info("stopped; confirmed lsn {}", FormatLsn(s.stream->confirmed()));
  return 0;
}

}  // namespace topicbridge
