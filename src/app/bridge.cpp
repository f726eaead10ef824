#include "bridge.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <unordered_map>

#include "slot_monitor.h"
#include "topicbridge/destination_queue.h"
#include "topicbridge/http_server.h"
#include "topicbridge/lsn_tracker.h"
#include "topicbridge/notification.h"
#include "topicbridge/replication_stream.h"
#include "topicbridge/row_mapper.h"
#include "topicbridge/sink_factory.h"
#include "topicbridge/status_registry.h"
#include "topicbridge/topic_matcher.h"
#include "topicbridge/wal2json_decoder.h"

namespace topicbridge {

namespace {
using namespace std::chrono_literals;

const Parameter* Subject(const DestinationConfig& d) {
  if (const auto* p = d.Find("subject")) return p;
  return d.Find("kafkaTopic");
}
}  // namespace

struct Destination {
  const DestinationConfig* config = nullptr;
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
  std::unique_ptr<RowMapper> mapper;
  std::vector<std::unique_ptr<Destination>> destinations;
  std::vector<std::vector<Destination*>> by_topic;  // matcher topic index → destinations
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
  LsnTracker::Ticket ticket = 0;
  Lsn commit_lsn = 0;
  std::uint64_t position = 0;  // index of the change within its transaction
  std::unordered_map<std::string, TableCounters*> tables;
  std::uint64_t decode_errors = 0;
  const std::atomic<bool>* stop = nullptr;  // set by Run
  // While a full at-least-once window blocks the reader: report what is
  // acknowledged meanwhile and keep the walsender from timing the connection
  // out (wal_sender_timeout); give up on stop or a lost connection.
  DestinationQueue::WaitHook keep_alive = [this] {
    stream->Confirm(tracker.Confirmable());
    return stream->SendStatus().ok() && !stop->load();
  };

  void HandleChange();
  void Notify(Destination& d, const MatcherTopic& topic);
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
  s.matcher = std::make_unique<TopicMatcher>(s.config.topics, &problems);
  for (const auto& d : s.config.destinations) {
    auto found = ValidateSinkParameters(d);
    problems.insert(problems.end(), found.begin(), found.end());
  }
  if (!problems.empty()) return problems;

  s.mapper = std::make_unique<RowMapper>(s.matcher->TableTypes(), &s.converter);
  s.by_topic.resize(s.matcher->topics().size());
  DeliveryLimits limits;
  for (const auto& d : s.config.destinations) {
    auto dest = std::make_unique<Destination>();
    dest->config = &d;
    dest->status = &s.registry.AddDestination(d.id, d.kind, d.topic);
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
    dest->sink = MakeSink(d, std::move(events));
    limits.max_in_flight = d.AtLeastOnce() ? s.config.delivery.at_least_once_window
                                           : s.config.delivery.best_effort_queue;
    dest->queue = std::make_unique<DestinationQueue>(
        dest->sink.get(), dest->status, d.AtLeastOnce() ? &s.tracker : nullptr, limits);
    for (std::size_t t = 0; t < s.matcher->topics().size(); ++t)
      if (s.matcher->topics()[t].url == d.topic) s.by_topic[t].push_back(dest.get());
    s.destinations.push_back(std::move(dest));
  }
  for (const auto& t : s.matcher->topics()) s.registry.Topic(t.url);
  return problems;
}

void Bridge::State::Notify(Destination& d, const MatcherTopic& topic) {
  NotificationTarget target{topic.url,
                            d.config->id,
                            d.subject,
                            d.config->content,
                            config.aidbox_base_url,
                            d.config->include_entry_action,
                            d.config->include_version_id,
                            d.config->include_version_id_in_focus_reference};
  const std::string& body =
      BuildNotification(event, target, ++d.event_number, NowIso8601(), &writer);
  OutboundMessage message;
  message.subject = d.subject;
  message.body = body;
  if (d.key_by_resource_id) message.key = event.id;
  if (d.queue->at_least_once()) {
    // Stable across replays: the same change of the same transaction gets the
    // same id, so JetStream's duplicate window drops a resend.
    message.msg_id = d.config->id + ":" + FormatLsn(commit_lsn) + ":" + std::to_string(position);
    d.queue->Submit(std::move(message), ticket, keep_alive);
  } else {
    d.queue->Offer(std::move(message));
  }
}

void Bridge::State::HandleChange() {
  switch (change.kind) {
    case ChangeKind::kBegin:
      ticket = tracker.BeginTransaction();
      commit_lsn = change.lsn;
      position = 0;
      mapper->BeginTransaction();
      return;
    case ChangeKind::kCommit:
      tracker.CommitTransaction(ticket, change.next_lsn);
      return;
    case ChangeKind::kInsert:
    case ChangeKind::kUpdate:
    case ChangeKind::kDelete:
      break;
    default:
      return;
  }
  ++position;
  Table(change.table).changes_decoded.fetch_add(1, std::memory_order_relaxed);
  const auto outcome = mapper->Map(change, &event, &error);
  if (outcome == RowMapper::Outcome::kError) {
    spdlog::error("lsn {}: {}", FormatLsn(change.lsn), error);
    return;
  }
  if (outcome != RowMapper::Outcome::kEvent) return;
  const auto on_error = [this](const CriteriaError& e) {
    registry.Topic(e.topic->url).fhirpath_errors.fetch_add(1, std::memory_order_relaxed);
    if (e.first_for_topic)
      spdlog::warn("topic {}: criteria '{}' failed on {}/{}: {} (counted from now on, logged once)",
                   e.topic->url, *e.expression, event.resource_type, event.id, e.message);
  };
  if (!matcher->Match(event, &matched, on_error, &error)) {
    spdlog::error("lsn {}: {}", FormatLsn(change.lsn), error);
    return;
  }
  for (std::size_t t : matched) {
    const MatcherTopic& topic = matcher->topics()[t];
    registry.Topic(topic.url).events_matched.fetch_add(1, std::memory_order_relaxed);
    for (Destination* d : by_topic[t]) Notify(*d, topic);
  }
}

void Bridge::Interrupt() {
  for (auto& d : state_->destinations) d->queue->Stop();
}

int Bridge::Run(const std::atomic<bool>& stop) {
  State& s = *state_;
  s.stop = &stop;
  HttpServerOptions http_options;
  http_options.listen = s.config.http.listen;
  s.http = std::make_unique<HttpServer>(s.registry, http_options);
  s.http->Start();
  spdlog::info("http: listening on {}", s.config.http.listen);

  ReplicationOptions options;
  options.dsn = s.config.postgres.dsn;
  options.slot = s.config.postgres.slot;
  options.tables = s.mapper->TablesToDecode(s.config.postgres.schema);
  s.stream = std::make_unique<ReplicationStream>(options);
  s.slot_monitor = std::make_unique<SlotMonitor>(
      s.config.postgres.dsn, s.config.postgres.slot, s.config.postgres.slot_lag_alarm_bytes,
      std::chrono::milliseconds(s.config.postgres.slot_lag_poll_ms), &s.registry.replication());
  s.slot_monitor->Start();
  ReplicationGauges& gauges = s.registry.replication();

  bool first = true;
  while (!stop) {
    const auto connected = first ? s.stream->Connect() : s.stream->ConnectWithBackoff(stop);
    if (!connected.ok()) {
      if (stop) break;
      if (connected.permanent) {
        spdlog::critical("{}", connected.message);
        return 2;
      }
      spdlog::warn("{}", connected.message);
      first = false;
      continue;
    }
    if (!first) gauges.reconnects.fetch_add(1);
    first = false;
    gauges.connected = true;
    spdlog::info("replication: streaming from slot {} ({} tables)", options.slot,
                 options.tables.size());
    while (!stop) {
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
          ++s.decode_errors;
          spdlog::error("wal2json message at lsn {} skipped: {}",
                        FormatLsn(s.stream->last_received()), decoded.error);
        } else {
          s.HandleChange();
        }
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
          d->config->id, d->queue->in_flight());
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
