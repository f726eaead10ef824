// Sinks against real brokers: a nats-server (-js) started by this test on a
// free port and killed by PID, and an in-process librdkafka mock cluster.
// Exits 77 (skip) when nats-server is not installed.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "topicbridge/kafka_sink.h"
#include "topicbridge/sink_factory.h"

using namespace topicbridge;
using namespace std::chrono_literals;

namespace {

int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

template <typename Predicate>
bool WaitFor(Predicate predicate, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!predicate()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

// A nats-server child process with JetStream, on a free port, in a temp dir.
class NatsServer {
 public:
  explicit NatsServer(const std::string& config_text = "") {
    if (system("command -v nats-server >/dev/null 2>&1") != 0) {
      MESSAGE("nats-server not installed: skipping");
      std::exit(77);
    }
    port_ = FreePort();
    dir_ = std::filesystem::temp_directory_path() /
           ("tb-sinks-test-" + std::to_string(getpid()) + "-" + std::to_string(port_));
    std::filesystem::create_directories(dir_);
    args_ = {"nats-server",         "-js", "-a",         "127.0.0.1", "-p",
             std::to_string(port_), "-sd", dir_.string()};
    if (!config_text.empty()) {
      std::ofstream(dir_ / "server.conf") << config_text;
      args_.push_back("-c");
      args_.push_back((dir_ / "server.conf").string());
    }
    Start();
  }
  ~NatsServer() {
    Stop();
    std::filesystem::remove_all(dir_);
  }
  // Same port, same store directory: JetStream streams survive a restart.
  void Start() {
    pid_ = fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args_) argv.push_back(a.data());
      argv.push_back(nullptr);
      // Keep the test runner's pipes free: a leftover server must not hold them open.
      // (dup2, not freopen: freopen would flush the parent's buffered output twice.)
      const int null_fd = open("/dev/null", O_WRONLY);
      dup2(null_fd, 1);
      dup2(null_fd, 2);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    if (!WaitFor([this] { return Reachable(); })) {
      Stop();
      FAIL("nats-server did not start on port " << port_);
    }
  }
  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  // TCP only: a server with authorization refuses anonymous NATS connections.
  bool Reachable() const {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port_));
    const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(fd);
    return ok;
  }

 private:
  int port_ = 0;
  pid_t pid_ = -1;
  std::filesystem::path dir_;
  std::vector<std::string> args_;
};

DestinationConfig Destination(const std::string& kind,
                              std::vector<std::pair<std::string, std::string>> strings) {
  DestinationConfig d;
  d.id = "d1";
  d.kind = kind;
  d.path = "destinations[0]";
  for (auto& [name, value] : strings) {
    Parameter p;
    p.name = name;
    p.value_type = "valueString";
    p.text = value;
    p.path = "destinations[0].parameter[" + std::to_string(d.parameters.size()) + "]";
    d.parameters.push_back(p);
  }
  return d;
}

void AddInteger(DestinationConfig& d, const std::string& name, std::int64_t value) {
  Parameter p;
  p.name = name;
  p.value_type = "valueInteger";
  p.integer = value;
  p.path = "destinations[0].parameter[" + std::to_string(d.parameters.size()) + "]";
  d.parameters.push_back(p);
}

void AddBoolean(DestinationConfig& d, const std::string& name, bool value) {
  Parameter p;
  p.name = name;
  p.value_type = "valueBoolean";
  p.boolean = value;
  p.path = "destinations[0].parameter[" + std::to_string(d.parameters.size()) + "]";
  d.parameters.push_back(p);
}

// What a sink reported through SinkEvents::on_error, from any of its threads.
class ReportedErrors {
 public:
  SinkEvents Events() {
    SinkEvents events;
    events.on_error = [this](const std::string& e) {
      std::lock_guard<std::mutex> lock(mutex_);
      errors_.push_back(e);
    };
    return events;
  }
  std::vector<std::string> All() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return errors_;
  }
  // True when some report contains `text`.
  bool Contains(const std::string& text) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& e : errors_)
      if (e.find(text) != std::string::npos) return true;
    return false;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> errors_;
};

PublishResult PublishAndWait(Sink& sink, OutboundMessage message,
                             std::chrono::seconds timeout = 15s) {
  auto promise = std::make_shared<std::promise<PublishResult>>();
  auto future = promise->get_future();
  sink.Publish(std::move(message), [promise](const PublishResult& r) { promise->set_value(r); });
  REQUIRE(future.wait_for(timeout) == std::future_status::ready);
  return future.get();
}

OutboundMessage Message(std::string body, std::string msg_id = "", std::string key = "") {
  OutboundMessage m;
  m.body = std::move(body);
  m.msg_id = std::move(msg_id);
  m.key = std::move(key);
  return m;
}

std::string AllText(const std::vector<ConfigProblem>& problems) {
  std::string text;
  for (const auto& p : problems) text += p.ToString() + "\n";
  return text;
}

void AddStream(const std::string& url, const char* name, const char* subject) {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  REQUIRE(natsConnection_ConnectTo(&nc, url.c_str()) == NATS_OK);
  REQUIRE(natsConnection_JetStream(&js, nc, nullptr) == NATS_OK);
  jsStreamConfig config;
  jsStreamConfig_Init(&config);
  config.Name = name;
  const char* subjects[] = {subject};
  config.Subjects = subjects;
  config.SubjectsLen = 1;
  jsStreamInfo* info = nullptr;
  REQUIRE(js_AddStream(&info, js, &config, nullptr, nullptr) == NATS_OK);
  jsStreamInfo_Destroy(info);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

}  // namespace

TEST_CASE("nats core: a subscriber receives the body with content-type application/json") {
  NatsServer server;
  auto sink = MakeSink(
      Destination("nats-core-best-effort", {{"url", server.url()}, {"subject", "tb.core"}}), {});
  REQUIRE(WaitFor([&] { return sink->Connected(); }));

  natsConnection* nc = nullptr;
  natsSubscription* sub = nullptr;
  REQUIRE(natsConnection_ConnectTo(&nc, server.url().c_str()) == NATS_OK);
  REQUIRE(natsConnection_SubscribeSync(&sub, nc, "tb.core") == NATS_OK);
  natsConnection_Flush(nc);

  const PublishResult r = PublishAndWait(*sink, Message(R"({"topic":"tb.core","value":{}})"));
  CHECK(r.ok);
  natsMsg* msg = nullptr;
  REQUIRE(natsSubscription_NextMsg(&msg, sub, 5000) == NATS_OK);
  CHECK(std::string(natsMsg_GetData(msg), natsMsg_GetDataLength(msg)) ==
        R"({"topic":"tb.core","value":{}})");
  const char* content_type = nullptr;
  REQUIRE(natsMsgHeader_Get(msg, "content-type", &content_type) == NATS_OK);
  CHECK(std::string(content_type) == "application/json");
  natsMsg_Destroy(msg);
  natsSubscription_Destroy(sub);
  natsConnection_Destroy(nc);
}

TEST_CASE("nats core: start-up never fails on a server that is down; messages are then lost") {
  std::vector<bool> connection_changes;
  std::mutex mutex;
  SinkEvents events;
  events.on_connection = [&](bool up) {
    std::lock_guard<std::mutex> lock(mutex);
    connection_changes.push_back(up);
  };
  const int port = FreePort();
  auto sink = MakeSink(
      Destination("nats-core-best-effort",
                  {{"url", "nats://127.0.0.1:" + std::to_string(port)}, {"subject", "tb.down"}}),
      events);
  CHECK_FALSE(sink->Connected());
  const PublishResult r = PublishAndWait(*sink, Message("{}"));
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("not connected") != std::string::npos);
}

TEST_CASE("nats: a server that starts later is connected to without a restart") {
  NatsServer server;
  server.Stop();
  std::atomic<int> ups{0};
  SinkEvents events;
  events.on_connection = [&](bool up) { ups += up ? 1 : 0; };
  auto core = MakeSink(
      Destination("nats-core-best-effort", {{"url", server.url()}, {"subject", "tb.later"}}),
      events);
  auto js = MakeSink(Destination("nats-jetstream-at-least-once",
                                 {{"url", server.url()}, {"subject", "tb.later.js"}}),
                     events);
  CHECK_FALSE(core->Connected());
  CHECK_FALSE(js->Connected());
  const PublishResult early = PublishAndWait(*js, Message("{}", "later-1"));
  CHECK_FALSE(early.ok);
  CHECK(early.retriable);

  server.Start();
  AddStream(server.url(), "TBL", "tb.later.js");
  REQUIRE(WaitFor([&] { return core->Connected() && js->Connected(); }, 20s));
  CHECK(ups.load() == 2);
  CHECK(PublishAndWait(*core, Message("{}")).ok);
  CHECK(PublishAndWait(*js, Message("{}", "later-1")).ok);  // the context was made on connect
}

TEST_CASE("nats: refused credentials are reported at start with the reason, never a hang") {
  NatsServer server(R"(authorization {
  users = [ { user: "tb", password: "right-pw-1" } ]
})");
  for (const char* kind : {"nats-core-best-effort", "nats-jetstream-at-least-once"}) {
    CAPTURE(kind);
    ReportedErrors reported;
    const auto start = std::chrono::steady_clock::now();
    auto sink = MakeSink(Destination(kind, {{"url", server.url()},
                                            {"subject", "tb.auth"},
                                            {"username", "tb"},
                                            {"password", "wrong-pw-2"}}),
                         reported.Events());
    // One attempt (bounded by cnats' 2 s connect timeout), then the retries run behind.
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK_FALSE(sink->Connected());
    {
      const auto errors = reported.All();
      REQUIRE(errors.size() == 1);  // reported at once, and a repeat is not reported again
      CHECK(errors[0].find("Authorization Violation") != std::string::npos);
      CHECK(errors[0].find("check username/password") != std::string::npos);
      CHECK(errors[0].find(server.url()) != std::string::npos);
      CHECK(errors[0].find("wrong-pw-2") == std::string::npos);
    }
    const PublishResult r = PublishAndWait(*sink, Message("{}", "auth-1"));
    CHECK_FALSE(r.ok);
    CHECK(r.retriable);
    CHECK(r.error.find("not connected") != std::string::npos);
  }
}

TEST_CASE("nats core: a permissions violation is reported and fails the next messages") {
  NatsServer server(R"(authorization {
  users = [ { user: "tb", password: "s3cr3t-pw", permissions: { publish: { deny: "forbidden.>" } } } ]
})");
  ReportedErrors reported;
  auto sink = MakeSink(Destination("nats-core-best-effort", {{"url", server.url()},
                                                             {"subject", "forbidden.x"},
                                                             {"username", "tb"},
                                                             {"password", "s3cr3t-pw"}}),
                       reported.Events());
  REQUIRE(WaitFor([&] { return sink->Connected(); }));
  PublishAndWait(*sink, Message("{}"));  // accepted locally; the server objects asynchronously
  sink->Flush(2000ms);
  REQUIRE(WaitFor([&] { return !reported.All().empty(); }));
  {
    const auto errors = reported.All();
    CHECK(errors[0].find("Permissions Violation") != std::string::npos);
    CHECK(errors[0].find("s3cr3t-pw") == std::string::npos);
  }
  const PublishResult r = PublishAndWait(*sink, Message("{}"));
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("refused") != std::string::npos);
  CHECK(r.error.find("s3cr3t-pw") == std::string::npos);
}

TEST_CASE("jetstream: acked into a stream; the same Nats-Msg-Id is stored once") {
  NatsServer server;
  AddStream(server.url(), "TB", "tb.js");
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  REQUIRE(natsConnection_ConnectTo(&nc, server.url().c_str()) == NATS_OK);
  REQUIRE(natsConnection_JetStream(&js, nc, nullptr) == NATS_OK);
  jsStreamInfo* info = nullptr;

  auto sink = MakeSink(
      Destination("nats-jetstream-at-least-once", {{"url", server.url()}, {"subject", "tb.js"}}),
      {});
  REQUIRE(WaitFor([&] { return sink->Connected(); }));
  CHECK(PublishAndWait(*sink, Message(R"({"n":1})", "event-1")).ok);
  CHECK(PublishAndWait(*sink, Message(R"({"n":1})", "event-1")).ok);
  CHECK(PublishAndWait(*sink, Message(R"({"n":2})", "event-2")).ok);

  REQUIRE(js_GetStreamInfo(&info, js, "TB", nullptr, nullptr) == NATS_OK);
  CHECK(info->State.Msgs == 2);
  jsStreamInfo_Destroy(info);

  natsMsg* stored = nullptr;
  REQUIRE(js_GetMsg(&stored, js, "TB", 1, nullptr, nullptr) == NATS_OK);
  const char* value = nullptr;
  REQUIRE(natsMsgHeader_Get(stored, "Nats-Msg-Id", &value) == NATS_OK);
  CHECK(std::string(value) == "event-1");
  REQUIRE(natsMsgHeader_Get(stored, "content-type", &value) == NATS_OK);
  CHECK(std::string(value) == "application/json");
  natsMsg_Destroy(stored);
  jsCtx_Destroy(js);
  natsConnection_Destroy(nc);
}

TEST_CASE("jetstream: fails fast while the server is down, then reconnects by itself") {
  NatsServer server;
  AddStream(server.url(), "TBR", "tb.restart");
  std::atomic<int> downs{0}, ups{0};
  SinkEvents events;
  events.on_connection = [&](bool up) { (up ? ups : downs)++; };
  auto sink = MakeSink(Destination("nats-jetstream-at-least-once",
                                   {{"url", server.url()}, {"subject", "tb.restart"}}),
                       events);
  REQUIRE(WaitFor([&] { return sink->Connected(); }));
  CHECK(PublishAndWait(*sink, Message("{}", "r-1")).ok);

  server.Stop();
  REQUIRE(WaitFor([&] { return !sink->Connected(); }));
  const PublishResult down = PublishAndWait(*sink, Message("{}", "r-2"));
  CHECK_FALSE(down.ok);
  CHECK(down.retriable);

  server.Start();
  REQUIRE(WaitFor([&] { return sink->Connected(); }, 15s));
  CHECK(PublishAndWait(*sink, Message("{}", "r-2")).ok);
  CHECK(downs.load() >= 1);
  CHECK(ups.load() >= 2);
}

TEST_CASE("jetstream: a subject no stream captures fails with how to create one") {
  NatsServer server;
  auto sink = MakeSink(Destination("nats-jetstream-at-least-once",
                                   {{"url", server.url()}, {"subject", "tb.nostream"}}),
                       {});
  REQUIRE(WaitFor([&] { return sink->Connected(); }));
  const PublishResult r = PublishAndWait(*sink, Message("{}", "x"));
  CHECK_FALSE(r.ok);
  CHECK(r.retriable);
  CHECK(r.error.find("no JetStream stream captures subject tb.nostream") != std::string::npos);
  CHECK(r.error.find("nats stream add") != std::string::npos);
}

namespace {

struct MockKafka {
  rd_kafka_t* handle = nullptr;
  rd_kafka_mock_cluster_t* cluster = nullptr;
  MockKafka() {
    char error[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    handle = rd_kafka_new(RD_KAFKA_PRODUCER, conf, error, sizeof error);
    REQUIRE(handle != nullptr);
    cluster = rd_kafka_mock_cluster_new(handle, 1);
    REQUIRE(cluster != nullptr);
    rd_kafka_mock_topic_create(cluster, "tb-topic", 1, 1);
  }
  ~MockKafka() {
    rd_kafka_mock_cluster_destroy(cluster);
    rd_kafka_destroy(handle);
  }
  std::string bootstraps() const { return rd_kafka_mock_cluster_bootstraps(cluster); }
};

struct ConsumedMessage {
  std::string key, value, content_type, message_id;
};

// Reads the first message of partition 0 with a real consumer.
ConsumedMessage ReadFirst(const std::string& bootstraps, const std::string& topic) {
  char error[256];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps.c_str(), error, sizeof error);
  rd_kafka_conf_set(conf, "group.id", "tb-test", error, sizeof error);
  rd_kafka_t* consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf, error, sizeof error);
  REQUIRE(consumer != nullptr);
  rd_kafka_topic_partition_list_t* parts = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(parts, topic.c_str(), 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
  rd_kafka_assign(consumer, parts);
  rd_kafka_topic_partition_list_destroy(parts);
  ConsumedMessage out;
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (std::chrono::steady_clock::now() < deadline) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(consumer, 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
      out.value.assign(static_cast<const char*>(m->payload), m->len);
      if (m->key) out.key.assign(static_cast<const char*>(m->key), m->key_len);
      rd_kafka_headers_t* headers = nullptr;
      const void* v = nullptr;
      size_t n = 0;
      if (rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        if (rd_kafka_header_get_last(headers, "content-type", &v, &n) == RD_KAFKA_RESP_ERR_NO_ERROR)
          out.content_type.assign(static_cast<const char*>(v), n);
        if (rd_kafka_header_get_last(headers, "topicbridge-message-id", &v, &n) ==
            RD_KAFKA_RESP_ERR_NO_ERROR)
          out.message_id.assign(static_cast<const char*>(v), n);
      }
      rd_kafka_message_destroy(m);
      break;
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_consumer_close(consumer);
  rd_kafka_destroy(consumer);
  return out;
}

}  // namespace

TEST_CASE("kafka at-least-once: delivery report ok, read back with key and header") {
  MockKafka mock;
  auto d = Destination("kafka-at-least-once",
                       {{"kafkaTopic", "tb-topic"}, {"bootstrapServers", mock.bootstraps()}});
  AddBoolean(d, "keyByResourceId", true);
  AddInteger(d, "deliveryTimeoutMs", 20000);
  auto sink = MakeSink(d, {});
  const PublishResult r =
      PublishAndWait(*sink, Message(R"({"topic":"tb-topic"})", "d1:0/1A:0/18", "pt-1"));
  CHECK(r.ok);
  CHECK(r.error.empty());
  CHECK(WaitFor([&] { return sink->Connected(); }, 5s));
  const ConsumedMessage m = ReadFirst(mock.bootstraps(), "tb-topic");
  CHECK(m.value == R"({"topic":"tb-topic"})");
  CHECK(m.key == "pt-1");
  CHECK(m.content_type == "application/json");
  CHECK(m.message_id == "d1:0/1A:0/18");
}

TEST_CASE("kafka at-least-once: a broker outage delays the delivery report, never fakes it") {
  MockKafka mock;
  auto d = Destination("kafka-at-least-once",
                       {{"kafkaTopic", "tb-topic"}, {"bootstrapServers", mock.bootstraps()}});
  auto sink = MakeSink(d, {});
  REQUIRE(PublishAndWait(*sink, Message("{\"n\":1}")).ok);
  rd_kafka_mock_broker_set_down(mock.cluster, 1);
  CHECK(WaitFor([&] { return !sink->Connected(); }, 5s));
  auto promise = std::make_shared<std::promise<PublishResult>>();
  auto future = promise->get_future();
  sink->Publish(Message("{\"n\":2}"), [promise](const PublishResult& r) { promise->set_value(r); });
  CHECK(future.wait_for(1500ms) == std::future_status::timeout);
  rd_kafka_mock_broker_set_up(mock.cluster, 1);
  REQUIRE(future.wait_for(20s) == std::future_status::ready);
  CHECK(future.get().ok);
  CHECK(sink->Connected());
}

TEST_CASE("kafka at-least-once: after a fatal producer error a new producer takes over") {
  MockKafka mock;
  auto d = Destination("kafka-at-least-once",
                       {{"kafkaTopic", "tb-topic"}, {"bootstrapServers", mock.bootstraps()}});
  ReportedErrors reported;
  auto sink = MakeSink(d, reported.Events());
  REQUIRE(PublishAndWait(*sink, Message("{\"n\":1}")).ok);
  REQUIRE(RaiseKafkaFatalErrorForTest(*sink));
  CHECK(WaitFor([&] { return reported.Contains("(fatal: "); }, 5s));
  CHECK(WaitFor([&] { return reported.Contains("replaced the producer after its fatal error"); },
                10s));
  // The new producer delivers: nothing stays refused until a restart.
  CHECK(PublishAndWait(*sink, Message("{\"n\":2}")).ok);
  CHECK(WaitFor([&] { return sink->Connected(); }, 5s));
}

TEST_CASE("kafka best-effort: no key unless keyByResourceId") {
  MockKafka mock;
  auto sink = MakeSink(Destination("kafka-best-effort", {{"kafkaTopic", "tb-topic"},
                                                         {"bootstrapServers", mock.bootstraps()},
                                                         {"compressionType", "gzip"}}),
                       {});
  CHECK(PublishAndWait(*sink, Message("{}", "", "pt-1")).ok);
  const ConsumedMessage m = ReadFirst(mock.bootstraps(), "tb-topic");
  CHECK(m.value == "{}");
  CHECK(m.key.empty());
}

TEST_CASE("kafka: an unreachable broker fails the message after deliveryTimeoutMs") {
  auto d = Destination(
      "kafka-at-least-once",
      {{"kafkaTopic", "t"}, {"bootstrapServers", "127.0.0.1:" + std::to_string(FreePort())}});
  AddInteger(d, "deliveryTimeoutMs", 1500);
  auto sink = MakeSink(d, {});
  CHECK_FALSE(sink->Connected());
  const PublishResult r = PublishAndWait(*sink, Message("{}"));
  CHECK_FALSE(r.ok);
  CHECK(r.retriable);
  CHECK(r.error.find("kafka: delivery to t failed") != std::string::npos);
}

TEST_CASE("validation names the parameter path and what is expected") {
  SUBCASE("unknown kind") {
    auto problems = ValidateSinkParameters(Destination("nats-whatever", {}));
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == "destinations[0].kind");
    CHECK(problems[0].message.find("nats-core-best-effort") != std::string::npos);
  }
  SUBCASE("missing required, unknown and ill-typed parameters") {
    auto d =
        Destination("nats-core-best-effort", {{"url", "nats://127.0.0.1:4222"}, {"colour", "red"}});
    AddInteger(d, "connectionName", 5);
    const std::string text = AllText(ValidateSinkParameters(d));
    CHECK(text.find("destinations[0].parameter[1]: unknown parameter \"colour\"") !=
          std::string::npos);
    CHECK(text.find(
              "destinations[0].parameter[2]: parameter \"connectionName\" expects valueString, got "
              "valueInteger") != std::string::npos);
    CHECK(text.find("destinations[0].parameter: missing required parameter \"subject\"") !=
          std::string::npos);
  }
  SUBCASE("kafka integers must be valueInteger") {
    auto d =
        Destination("kafka-best-effort",
                    {{"kafkaTopic", "t"}, {"bootstrapServers", "b:9092"}, {"batchSize", "10"}});
    const std::string text = AllText(ValidateSinkParameters(d));
    CHECK(text.find("destinations[0].parameter[2]: parameter \"batchSize\" expects valueInteger") !=
          std::string::npos);
  }
  SUBCASE("a repeated parameter") {
    auto d = Destination("nats-core-best-effort",
                         {{"url", "nats://a"}, {"subject", "s"}, {"subject", "t"}});
    CHECK(AllText(ValidateSinkParameters(d)).find("given more than once") != std::string::npos);
  }
  SUBCASE("sslContext other than none or tls") {
    auto d = Destination("nats-core-best-effort",
                         {{"url", "nats://a"}, {"subject", "s"}, {"sslContext", "my-ctx"}});
    auto problems = ValidateSinkParameters(d);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == "destinations[0].parameter[2]");
    CHECK(problems[0].message.find("expected \"none\" or \"tls\"") != std::string::npos);
  }
  SUBCASE("librdkafka rejects a bad value") {
    auto d = Destination(
        "kafka-at-least-once",
        {{"kafkaTopic", "t"}, {"bootstrapServers", "b:9092"}, {"compressionType", "brotli"}});
    auto problems = ValidateSinkParameters(d);
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].path == "destinations[0].parameter[2]");
    CHECK(problems[0].message.find("compression.type") != std::string::npos);
  }
  SUBCASE("an unparseable SASL JAAS line is reported without its value") {
    auto d = Destination("kafka-at-least-once", {{"kafkaTopic", "t"},
                                                 {"bootstrapServers", "b:9092"},
                                                 {"saslJaasConfig", "hunter2-secret"}});
    const std::string text = AllText(ValidateSinkParameters(d));
    CHECK(text.find("destinations[0].parameter[2]: expected a JAAS line") != std::string::npos);
    CHECK(text.find("hunter2-secret") == std::string::npos);
  }
  SUBCASE("a valid Kafka SASL destination passes") {
    auto d = Destination(
        "kafka-at-least-once",
        {{"kafkaTopic", "t"},
         {"bootstrapServers", "b:9092"},
         {"securityProtocol", "SASL_PLAINTEXT"},
         {"saslMechanism", "PLAIN"},
         {"saslJaasConfig",
          R"(org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="p";)"}});
    AddInteger(d, "batchSize", 16384);
    AddInteger(d, "maxBlockMs", 100);
    AddInteger(d, "requestTimeoutMs", 30000);
    AddInteger(d, "maxRequestSize", 1048576);
    AddBoolean(d, "keyByResourceId", true);
    CHECK(AllText(ValidateSinkParameters(d)) == "");
  }
  SUBCASE("MakeSink throws SinkConfigError with every problem") {
    try {
      MakeSink(Destination("kafka-best-effort", {}), {});
      FAIL("expected SinkConfigError");
    } catch (const SinkConfigError& e) {
      CHECK(e.problems().size() == 2);
    }
  }
}

TEST_CASE("nats security parameters: TLS files, one way to authenticate") {
  const std::string file = std::filesystem::temp_directory_path() / "tb-sinks-test-readable";
  std::ofstream(file) << "x";
  SUBCASE("TLS with CA, certificate and key passes; tls:// implies TLS") {
    auto d = Destination("nats-core-best-effort", {{"url", "tls://127.0.0.1:4222"},
                                                   {"subject", "s"},
                                                   {"sslContext", "tls"},
                                                   {"tlsCaFile", file},
                                                   {"tlsCertFile", file},
                                                   {"tlsKeyFile", file}});
    CHECK(AllText(ValidateSinkParameters(d)) == "");
  }
  SUBCASE("TLS files need TLS, go in pairs and must be readable") {
    auto d = Destination("nats-core-best-effort", {{"url", "nats://a"},
                                                   {"subject", "s"},
                                                   {"tlsCaFile", "/nonexistent/ca.pem"},
                                                   {"tlsKeyFile", file}});
    const std::string text = AllText(ValidateSinkParameters(d));
    CHECK(text.find("parameter[2]: tlsCaFile needs sslContext \"tls\"") != std::string::npos);
    CHECK(text.find("parameter[2]: cannot read file /nonexistent/ca.pem") != std::string::npos);
    CHECK(text.find("tlsCertFile and tlsKeyFile go together") != std::string::npos);
  }
  SUBCASE("sslContext none contradicts a tls:// url") {
    auto d = Destination("nats-core-best-effort",
                         {{"url", "tls://a:4222"}, {"subject", "s"}, {"sslContext", "none"}});
    CHECK(AllText(ValidateSinkParameters(d)).find("contradicts") != std::string::npos);
  }
  SUBCASE("credentials file, nkey seed and username are alternatives") {
    auto d = Destination("nats-core-best-effort", {{"url", "nats://a"},
                                                   {"subject", "s"},
                                                   {"credentialsFilePath", file},
                                                   {"nkeySeedFilePath", file}});
    CHECK(AllText(ValidateSinkParameters(d)).find("choose one way to authenticate") !=
          std::string::npos);
  }
  SUBCASE("a password without username") {
    auto d = Destination("nats-core-best-effort",
                         {{"url", "nats://a"}, {"subject", "s"}, {"password", "pw-hidden"}});
    const std::string text = AllText(ValidateSinkParameters(d));
    CHECK(text.find("password needs username") != std::string::npos);
    CHECK(text.find("pw-hidden") == std::string::npos);
  }
  SUBCASE("a seed file without a user seed is a configuration error, without its content") {
    std::ofstream(file) << "SAAGNOTAUSERSEED-secret-material\n";
    auto d =
        Destination("nats-core-best-effort",
                    {{"url", "nats://127.0.0.1:1"}, {"subject", "s"}, {"nkeySeedFilePath", file}});
    try {
      MakeSink(d, {});
      FAIL("expected SinkConfigError");
    } catch (const SinkConfigError& e) {
      CHECK(std::string(e.what()).find("no user nkey seed") != std::string::npos);
      CHECK(std::string(e.what()).find("secret-material") == std::string::npos);
    }
  }
  std::filesystem::remove(file);
}

TEST_CASE("kafka security: supported protocols and mechanisms, clear refusals") {
  const std::string jaas =
      R"(org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="pw-kafka-hidden";)";
  auto kafka = [](std::vector<std::pair<std::string, std::string>> extra) {
    std::vector<std::pair<std::string, std::string>> p = {{"kafkaTopic", "t"},
                                                          {"bootstrapServers", "b:9092"}};
    p.insert(p.end(), extra.begin(), extra.end());
    return Destination("kafka-at-least-once", p);
  };
  SUBCASE("SASL_SSL with SCRAM-SHA-512 maps to sasl.* and passes") {
    auto d = kafka({{"securityProtocol", "SASL_SSL"},
                    {"saslMechanism", "SCRAM-SHA-512"},
                    {"saslJaasConfig", jaas}});
    std::vector<ConfigProblem> problems;
    const KafkaOptions o = KafkaOptionsFrom(d, &problems);
    CHECK(AllText(problems) == "");
    auto property = [&](const std::string& name) {
      for (const auto& [k, v] : o.properties)
        if (k == name) return v;
      return std::string("<absent>");
    };
    CHECK(property("security.protocol") == "sasl_ssl");
    CHECK(property("sasl.mechanisms") == "SCRAM-SHA-512");
    CHECK(property("sasl.username") == "u");
    CHECK(property("sasl.password") == "pw-kafka-hidden");
    // At-least-once: every replica acknowledges, one request in flight keeps the order.
    CHECK(property("acks") == "all");
    CHECK(property("max.in.flight.requests.per.connection") == "1");
    CHECK(property("enable.idempotence") == "false");
  }
  SUBCASE("SCRAM-SHA-256 and PLAIN over SASL_PLAINTEXT pass") {
    for (const char* mechanism : {"SCRAM-SHA-256", "PLAIN"}) {
      auto d = kafka({{"securityProtocol", "SASL_PLAINTEXT"},
                      {"saslMechanism", mechanism},
                      {"saslJaasConfig", jaas}});
      CHECK(AllText(ValidateSinkParameters(d)) == "");
    }
  }
  SUBCASE("AWS_MSK_IAM is refused with a reason and an alternative") {
    auto d = kafka({{"securityProtocol", "SASL_SSL"},
                    {"saslMechanism", "AWS_MSK_IAM"},
                    {"saslJaasConfig", jaas}});
    const std::string text = AllText(ValidateSinkParameters(d));
    CHECK(text.find("parameter[3]: AWS_MSK_IAM is not supported") != std::string::npos);
    CHECK(text.find("SCRAM-SHA-512") != std::string::npos);
    CHECK(text.find("pw-kafka-hidden") == std::string::npos);
  }
  SUBCASE("GSSAPI, an unknown protocol, SASL without credentials or without SASL protocol") {
    CHECK(AllText(ValidateSinkParameters(kafka({{"securityProtocol", "SASL_SSL"},
                                                {"saslMechanism", "GSSAPI"},
                                                {"saslJaasConfig", jaas}})))
              .find("\"GSSAPI\" is not supported") != std::string::npos);
    CHECK(AllText(ValidateSinkParameters(kafka({{"securityProtocol", "TLS"}})))
              .find("expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL") != std::string::npos);
    CHECK(AllText(ValidateSinkParameters(kafka({{"securityProtocol", "SASL_SSL"}})))
              .find("SASL_SSL needs saslJaasConfig") != std::string::npos);
    CHECK(AllText(ValidateSinkParameters(kafka({{"saslMechanism", "PLAIN"}})))
              .find("need securityProtocol SASL_PLAINTEXT or SASL_SSL") != std::string::npos);
  }
  SUBCASE("SSL with CA and client certificate maps to ssl.*.pem; key and chain go together") {
    const std::string pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    auto d = kafka({{"securityProtocol", "SSL"}, {"sslTruststoreCertificates", pem}});
    std::vector<ConfigProblem> problems;
    const KafkaOptions o = KafkaOptionsFrom(d, &problems);
    bool has_ca = false;
    for (const auto& [k, v] : o.properties) has_ca |= k == "ssl.ca.pem" && v == pem;
    CHECK(has_ca);
    CHECK(AllText(ValidateSinkParameters(
                      kafka({{"securityProtocol", "SSL"}, {"sslKeystoreKey", "pw-key-material"}})))
              .find("sslKeystoreKey and sslKeystoreCertificateChain go together") !=
          std::string::npos);
  }
}

// librdkafka's mock cluster has no SASL: what this proves is that the SASL settings
// reach the client (it insists on the handshake) and the password stays out of errors.
TEST_CASE("kafka SASL_PLAINTEXT/PLAIN insists on SASL; errors never show the password") {
  MockKafka mock;
  auto d = Destination(
      "kafka-at-least-once",
      {{"kafkaTopic", "tb-topic"},
       {"bootstrapServers", mock.bootstraps()},
       {"securityProtocol", "SASL_PLAINTEXT"},
       {"saslMechanism", "PLAIN"},
       {"saslJaasConfig",
        R"(org.apache.kafka.common.security.plain.PlainLoginModule required username="u" password="pw-sasl-hidden";)"}});
  AddInteger(d, "deliveryTimeoutMs", 3000);
  ReportedErrors reported;
  auto sink = MakeSink(d, reported.Events());
  const PublishResult r = PublishAndWait(*sink, Message(R"({"topic":"tb-topic"})"), 30s);
  CHECK_FALSE(r.ok);
  CHECK(r.error.find("pw-sasl-hidden") == std::string::npos);
  CHECK(reported.Contains("SASL"));
  CHECK_FALSE(reported.Contains("pw-sasl-hidden"));
}
