// Aidbox parameter → librdkafka property:
//
//   kafkaTopic         (topic of each message; OutboundMessage::subject overrides)
//   bootstrapServers   bootstrap.servers
//   compressionType    compression.type      none | gzip | snappy | lz4 | zstd
//   batchSize          batch.size            bytes per batch
//   deliveryTimeoutMs  delivery.timeout.ms   (librdkafka alias of message.timeout.ms)
//   maxBlockMs         —                     no librdkafka equivalent (produce never blocks):
//                                            enforced here — Publish retries while librdkafka's
//                                            queue is full for at most maxBlockMs, then the
//                                            message completes with ok=false. Default 60000
//                                            (Kafka's) for at-least-once, 0 for best-effort so
//                                            the fast path never waits.
//   maxRequestSize     message.max.bytes
//   requestTimeoutMs   request.timeout.ms
//   securityProtocol   security.protocol     PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL
//   saslMechanism      sasl.mechanisms       PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512 (others,
//                                            e.g. AWS_MSK_IAM, are refused with a reason)
//   saslJaasConfig     sasl.username, sasl.password  parsed from the Java JAAS line
//                      `... required username="u" password="p";`
//   sslKeystoreKey     ssl.key.pem           PEM private key (client certificate's)
//   sslKeystoreCertificateChain  ssl.certificate.pem  PEM client certificate (chain)
//   sslTruststoreCertificates    ssl.ca.pem           PEM CA certificates for the brokers
//   keyByResourceId    —                     the sink sends OutboundMessage::key
//
// Fixed: kafka-at-least-once → acks=all, max.in.flight.requests.per.connection=1,
// enable.idempotence=false (see KafkaOptionsFrom); kafka-best-effort → acks=1.
// client.id=topicbridge-<destination id>.
#include "topicbridge/kafka_sink.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <mutex>
#include <regex>
#include <shared_mutex>
#include <thread>
#include <utility>

#include "parameter_schema.h"

namespace topicbridge {

namespace {

// Header carrying OutboundMessage::msg_id (at-least-once destinations).
constexpr const char* kMessageIdHeader = "topicbridge-message-id";

using sinks::ParameterPath;
using sinks::StringParameter;

struct Mapped {
  const char* parameter;
  const char* property;
};

constexpr Mapped kDirect[] = {
    {"bootstrapServers", "bootstrap.servers"},
    {"compressionType", "compression.type"},
    {"batchSize", "batch.size"},
    {"deliveryTimeoutMs", "delivery.timeout.ms"},
    {"maxRequestSize", "message.max.bytes"},
    {"requestTimeoutMs", "request.timeout.ms"},
    {"securityProtocol", "security.protocol"},
    {"saslMechanism", "sasl.mechanisms"},
    {"sslKeystoreKey", "ssl.key.pem"},
    {"sslKeystoreCertificateChain", "ssl.certificate.pem"},
    {"sslTruststoreCertificates", "ssl.ca.pem"},
};

const Parameter* Named(const DestinationConfig& d, const char* name) {
  for (const Parameter& p : d.parameters) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// `username="u"` in a JAAS line; nullopt-like empty + false when absent.
bool JaasField(const std::string& jaas, const char* field, std::string* value) {
  const std::regex pattern(std::string("(^|\\s)") + field + "\\s*=\\s*\"([^\"]*)\"");
  std::smatch match;
  if (!std::regex_search(jaas, match, pattern)) return false;
  *value = match[2];
  return true;
}

std::string Upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

// What librdkafka can do, with a reason for what it cannot.
void CheckSecurity(const DestinationConfig& d, std::vector<ConfigProblem>* problems) {
  const std::string protocol = Upper(StringParameter(d, "securityProtocol", "PLAINTEXT"));
  const std::string mechanism = StringParameter(d, "saslMechanism");
  const bool sasl = protocol == "SASL_PLAINTEXT" || protocol == "SASL_SSL";
  if (protocol != "PLAINTEXT" && protocol != "SSL" && !sasl) {
    problems->push_back({ParameterPath(d, "securityProtocol"),
                         "securityProtocol \"" + protocol +
                             "\": expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"});
  }
  if (mechanism == "AWS_MSK_IAM") {
    problems->push_back({ParameterPath(d, "saslMechanism"),
                         "AWS_MSK_IAM is not supported (librdkafka has no MSK IAM signer): use "
                         "MSK's SASL/SCRAM (SCRAM-SHA-512 with saslJaasConfig) or mutual TLS "
                         "(securityProtocol SSL)"});
  } else if (!mechanism.empty() && mechanism != "PLAIN" && mechanism != "SCRAM-SHA-256" &&
             mechanism != "SCRAM-SHA-512") {
    problems->push_back({ParameterPath(d, "saslMechanism"),
                         "saslMechanism \"" + mechanism +
                             "\" is not supported: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512"});
  }
  if (!sasl && (d.Find("saslMechanism") != nullptr || d.Find("saslJaasConfig") != nullptr)) {
    problems->push_back({ParameterPath(d, "securityProtocol"),
                         "saslMechanism and saslJaasConfig need securityProtocol SASL_PLAINTEXT "
                         "or SASL_SSL"});
  }
  if (sasl && d.Find("saslJaasConfig") == nullptr) {
    problems->push_back({ParameterPath(d, "securityProtocol"),
                         protocol + " needs saslJaasConfig (username and password)"});
  }
  if ((d.Find("sslKeystoreKey") == nullptr) != (d.Find("sslKeystoreCertificateChain") == nullptr)) {
    problems->push_back({d.path + ".parameter",
                         "sslKeystoreKey and sslKeystoreCertificateChain go together (client "
                         "key and its certificate)"});
  }
}

// Dry run: librdkafka checks names and values without connecting.
void CheckWithLibrdkafka(const DestinationConfig& d, const KafkaOptions& o,
                         const std::vector<std::string>& origin,
                         std::vector<ConfigProblem>* problems) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char error[512];
  for (std::size_t i = 0; i < o.properties.size(); ++i) {
    const auto& [name, value] = o.properties[i];
    if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), error, sizeof error) !=
        RD_KAFKA_CONF_OK) {
      const std::string path = origin[i].empty() ? d.path : ParameterPath(d, origin[i].c_str());
      problems->push_back(
          {path, "librdkafka rejects " + name + ": " + sinks::Scrub(error, o.secrets)});
    }
  }
  rd_kafka_conf_destroy(conf);
}

}  // namespace

KafkaOptions KafkaOptionsFrom(const DestinationConfig& d, std::vector<ConfigProblem>* problems) {
  KafkaOptions o;
  std::vector<std::string> origin;  // parameter name behind each property ("" = fixed)
  auto add = [&](std::string name, std::string value, std::string from) {
    o.properties.emplace_back(std::move(name), std::move(value));
    origin.push_back(std::move(from));
  };
  o.topic = StringParameter(d, "kafkaTopic");
  o.at_least_once = d.kind == "kafka-at-least-once";
  o.key_by_resource_id = sinks::BooleanParameter(d, "keyByResourceId", false);
  o.max_block_ms =
      static_cast<int>(sinks::IntegerParameter(d, "maxBlockMs", o.at_least_once ? 60000 : 0));
  o.secrets = {StringParameter(d, "saslJaasConfig"), StringParameter(d, "sslKeystoreKey")};
  add("client.id", "topicbridge-" + d.id, "");
  if (o.at_least_once) {
    // Not idempotent: one produce request in flight per broker keeps each partition's order
    // through librdkafka's retries, and a retry may only duplicate (messages carry
    // topicbridge-message-id). librdkafka 2.0.2's idempotent producer, after a refused
    // batch (POLICY_VIOLATION), acknowledged messages the cluster never stored: 6 of 8
    // runs of test_faults' refused-produce scenario lost 1-3 events, 0 of 16 like this.
    add("enable.idempotence", "false", "");
    add("max.in.flight.requests.per.connection", "1", "");
    add("acks", "all", "");
  } else {
    add("acks", "1", "");
  }
  // Brokers' state for Connected(): statistics report each broker's state.
  add("statistics.interval.ms", "1000", "");
  for (const Mapped& m : kDirect) {
    const Parameter* p = Named(d, m.parameter);
    if (p == nullptr) continue;
    std::string value =
        p->value_type == "valueString" || !p->text.empty() ? p->text : std::to_string(p->integer);
    if (std::string(m.parameter) == "securityProtocol") value = Lower(value);
    add(m.property, value, m.parameter);
  }
  const std::string jaas = StringParameter(d, "saslJaasConfig");
  if (!jaas.empty()) {
    std::string username, password;
    if (JaasField(jaas, "username", &username) && JaasField(jaas, "password", &password)) {
      o.secrets.push_back(password);
      add("sasl.username", username, "saslJaasConfig");
      add("sasl.password", password, "saslJaasConfig");
    } else {
      problems->push_back({ParameterPath(d, "saslJaasConfig"),
                           "expected a JAAS line with username=\"...\" and password=\"...\" "
                           "(value not shown)"});
    }
  }
  CheckSecurity(d, problems);
  CheckWithLibrdkafka(d, o, origin, problems);
  return o;
}

namespace {

class KafkaSink final : public Sink {
 public:
  KafkaSink(const KafkaOptions& options, SinkEvents events)
      : options_(options), events_(std::move(events)) {
    std::string error;
    producer_ = NewProducer(&error);
    if (producer_ == nullptr) throw SinkConfigError({{"", error}});
    poller_ = std::thread([this] {
      while (!stopping_.load()) {
        {
          std::shared_lock<std::shared_mutex> lock(producer_mutex_);
          rd_kafka_poll(producer_, 100);
        }
        if (fatal_.load()) ReplaceProducer();
      }
    });
  }

  ~KafkaSink() override {
    Flush(std::chrono::milliseconds(5000));
    stopping_ = true;
    poller_.join();
    // Whatever is left completes with ok=false (purged) on this last poll.
    rd_kafka_purge(producer_, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(producer_, 0);
    rd_kafka_destroy(producer_);
  }

  void Publish(OutboundMessage message, PublishCallback done) override {
    const std::string& topic = message.subject.empty() ? options_.topic : message.subject;
    const bool keyed = options_.key_by_resource_id && !message.key.empty();
    auto* callback = new PublishCallback(std::move(done));
    rd_kafka_headers_t* headers = rd_kafka_headers_new(2);
    rd_kafka_header_add(headers, "content-type", -1, "application/json", -1);
    if (!message.msg_id.empty()) {
      // The same id on a replay: consumers deduplicate by it (Kafka has no window).
      rd_kafka_header_add(headers, kMessageIdHeader, -1, message.msg_id.data(),
                          static_cast<ssize_t>(message.msg_id.size()));
    }
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(options_.max_block_ms);
    rd_kafka_resp_err_t err;
    std::shared_lock<std::shared_mutex> lock(producer_mutex_);  // ReplaceProducer waits
    for (;;) {
      err = rd_kafka_producev(
          producer_, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
          RD_KAFKA_V_VALUE(message.body.data(), message.body.size()),
          RD_KAFKA_V_KEY(keyed ? message.key.data() : nullptr, keyed ? message.key.size() : 0),
          RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(callback), RD_KAFKA_V_END);
      if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || std::chrono::steady_clock::now() >= deadline) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the poller frees room
    }
    if (err == RD_KAFKA_RESP_ERR_NO_ERROR)
      return;  // headers and callback now belong to the message
    rd_kafka_headers_destroy(headers);
    std::unique_ptr<PublishCallback> failed(callback);
    std::string reason = rd_kafka_err2str(err);
    if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
      reason += " (still full after maxBlockMs=" + std::to_string(options_.max_block_ms) + ")";
    }
    (*failed)({false, err != RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
               "kafka: produce to " + topic + ": " + reason});
  }

  bool Connected() const override { return connected_.load(); }

  void Flush(std::chrono::milliseconds timeout) override {
    std::shared_lock<std::shared_mutex> lock(producer_mutex_);
    rd_kafka_flush(producer_, static_cast<int>(timeout.count()));
  }

  void RaiseFatalErrorForTest() {
    std::shared_lock<std::shared_mutex> lock(producer_mutex_);
    rd_kafka_test_fatal_error(producer_, RD_KAFKA_RESP_ERR__INCONSISTENT, "raised by a test");
  }

 private:
  // A producer configured from options_ with this sink's callbacks; nullptr with `error` set.
  rd_kafka_t* NewProducer(std::string* error) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    char text[512];
    for (const auto& [name, value] : options_.properties) {
      if (rd_kafka_conf_set(conf, name.c_str(), value.c_str(), text, sizeof text) !=
          RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        *error = "librdkafka rejects " + name + ": " + Scrub(text);
        return nullptr;
      }
    }
    rd_kafka_conf_set_opaque(conf, this);
    rd_kafka_conf_set_dr_msg_cb(conf, &KafkaSink::OnDelivery);
    rd_kafka_conf_set_error_cb(conf, &KafkaSink::OnError);
    rd_kafka_conf_set_stats_cb(conf, &KafkaSink::OnStatistics);
    rd_kafka_conf_set_log_cb(conf, &KafkaSink::OnLog);
    rd_kafka_t* producer = rd_kafka_new(RD_KAFKA_PRODUCER, conf, text, sizeof text);
    if (producer == nullptr) {  // conf is still ours on failure
      rd_kafka_conf_destroy(conf);
      *error = "kafka producer: " + Scrub(text);
    }
    return producer;
  }

  // After a fatal error (mostly an idempotent producer's, which topicbridge no longer
  // configures; also an inconsistency librdkafka cannot recover from) the producer refuses
  // every message for good: a new one takes its place. What the old one still held
  // completes with a purge error, which the delivery queue retries in order; at-least-once
  // loses nothing. Poller thread only; at most once per kReplaceInterval.
  void ReplaceProducer() {
    const auto now = std::chrono::steady_clock::now();
    if (now < next_replace_) return;
    next_replace_ = now + kReplaceInterval;
    std::string error;
    rd_kafka_t* fresh = NewProducer(&error);
    if (fresh == nullptr) {
      if (events_.on_error) events_.on_error("kafka: cannot replace the failed producer: " + error);
      return;
    }
    rd_kafka_t* old = nullptr;
    {
      std::unique_lock<std::shared_mutex> lock(producer_mutex_);
      old = std::exchange(producer_, fresh);
      fatal_ = false;
    }
    rd_kafka_purge(old, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_poll(old, 0);  // their delivery reports: failed, retriable
    rd_kafka_destroy(old);
    ++replacements_;
    if (events_.on_error) {
      events_.on_error("kafka: replaced the producer after its fatal error (replacement " +
                       std::to_string(replacements_) + "); unacknowledged messages are resent");
    }
  }

  std::string Scrub(const std::string& text) const { return sinks::Scrub(text, options_.secrets); }

  void SetConnected(bool connected) {
    if (fatal_.load()) connected = false;
    if (connected_.exchange(connected) != connected && events_.on_connection) {
      events_.on_connection(connected);
    }
  }

  static void OnDelivery(rd_kafka_t*, const rd_kafka_message_t* message, void* opaque) {
    auto* self = static_cast<KafkaSink*>(opaque);
    std::unique_ptr<PublishCallback> done(static_cast<PublishCallback*>(message->_private));
    if (message->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      self->SetConnected(true);
      (*done)({true, true, ""});
      return;
    }
    (*done)({false, message->err != RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE,
             "kafka: delivery to " + std::string(rd_kafka_topic_name(message->rkt)) +
                 " failed: " + self->Scrub(rd_kafka_err2str(message->err))});
  }

  // Callbacks run inside rd_kafka_poll/flush: on the poller thread, or under a shared lock.
  static void OnError(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
    auto* self = static_cast<KafkaSink*>(opaque);
    if (rk != self->producer_) return;  // the replaced producer's last words
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) self->SetConnected(false);
    std::string text = "kafka: " + self->Scrub(reason);
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
      // The producer cannot continue: every later message fails until the
      // poller replaces it. Report it as a lost connection so /readyz shows it meanwhile.
      self->fatal_ = true;
      self->SetConnected(false);
      char fatal[512];
      rd_kafka_fatal_error(rk, fatal, sizeof fatal);
      text += " (fatal: " + self->Scrub(fatal) + ")";
    }
    if (self->events_.on_error) self->events_.on_error(text);
  }

  static int OnStatistics(rd_kafka_t* rk, char* json, size_t length, void* opaque) {
    auto* self = static_cast<KafkaSink*>(opaque);
    if (rk != self->producer_) return 0;
    const std::string_view stats(json, length);
    self->SetConnected(stats.find("\"state\":\"UP\"") != std::string_view::npos);
    return 0;  // librdkafka frees json
  }

  static void OnLog(const rd_kafka_t* rk, int level, const char* facility, const char* text) {
    // Warnings and worse (syslog levels) join our log, scrubbed, in its format (text or JSON).
    // A connection failure (FAIL) also reaches OnError, which logs it with the destination:
    // here it is only a debug line, not a second error.
    if (level > 4) return;
    auto* self = static_cast<KafkaSink*>(rd_kafka_opaque(rk));
    const bool reported = std::string_view(facility) == "FAIL";
    spdlog::log(reported ? spdlog::level::debug : spdlog::level::warn, "kafka {}: {}", facility,
                self->Scrub(text));
  }

  static constexpr auto kReplaceInterval = std::chrono::seconds(2);

  const KafkaOptions options_;
  const SinkEvents events_;
  // Replaced only by ReplaceProducer (exclusive); used under a shared lock elsewhere.
  std::shared_mutex producer_mutex_;
  rd_kafka_t* producer_ = nullptr;  // GUARDED_BY(producer_mutex_) for writes
  std::chrono::steady_clock::time_point next_replace_{};  // poller thread only
  int replacements_ = 0;                                  // poller thread only
  std::thread poller_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::atomic<bool> fatal_{false};
};

}  // namespace

std::unique_ptr<Sink> MakeKafkaSink(const KafkaOptions& options, SinkEvents events) {
  return std::make_unique<KafkaSink>(options, std::move(events));
}

bool RaiseKafkaFatalErrorForTest(Sink& sink) {
  auto* kafka = dynamic_cast<KafkaSink*>(&sink);
  if (kafka == nullptr) return false;
  kafka->RaiseFatalErrorForTest();
  return true;
}

}  // namespace topicbridge
