// kafka-mock-cluster: librdkafka's in-process mock Kafka cluster, run as its own process so
// integration tests can talk to it over loopback TCP with real clients (topicbridge, kcat).
// Prints the bootstrap servers as the first stdout line, then obeys one command per stdin line
// and answers each with exactly one line, "ok" or "error: <why>". Exits on `quit`, when stdin
// closes (unless --ignore-stdin), or on SIGTERM/SIGINT.
//
// Commands:
//   broker-down <id> | broker-up <id> | broker-rtt <id> <ms>
//   create-topic <name> <partitions> [<replication-factor>]
//   partition-leader <topic> <partition> <broker-id>
//   request-errors <api-key> <error>...   (error as number or name, e.g. NOT_LEADER_FOR_PARTITION)
//   clear-request-errors <api-key>
//   quit
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <poll.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace {

volatile std::sig_atomic_t g_stop = 0;

void OnSignal(int) { g_stop = 1; }

using HandlePtr = std::unique_ptr<rd_kafka_t, decltype(&rd_kafka_destroy)>;

std::optional<long> ParseInt(const std::string& text) {
  char* end = nullptr;
  long value = std::strtol(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0') return std::nullopt;
  return value;
}

// Accepts a numeric error code or its librdkafka name with or without the "ERR_" prefix.
std::optional<rd_kafka_resp_err_t> ParseError(const std::string& text) {
  if (auto code = ParseInt(text)) return static_cast<rd_kafka_resp_err_t>(*code);
  std::string name = text.rfind("ERR_", 0) == 0 ? text.substr(4) : text;
  const rd_kafka_err_desc* descs = nullptr;
  size_t count = 0;
  rd_kafka_get_err_descs(&descs, &count);
  for (size_t i = 0; i < count; ++i) {
    if (descs[i].name != nullptr && name == descs[i].name) return descs[i].code;
  }
  return std::nullopt;
}

std::string Result(rd_kafka_resp_err_t err) {
  return err == RD_KAFKA_RESP_ERR_NO_ERROR ? "ok" : std::string("error: ") + rd_kafka_err2str(err);
}

// Runs one command line against the cluster; returns the answer line.
std::string Execute(rd_kafka_mock_cluster_t* cluster, const std::string& line, bool* quit) {
  std::istringstream in(line);
  std::string command;
  in >> command;
  std::vector<std::string> args;
  for (std::string arg; in >> arg;) args.push_back(arg);
  std::vector<long> numbers;
  for (const auto& arg : args) numbers.push_back(ParseInt(arg).value_or(-1));
  auto arity = [&](size_t min, size_t max) { return args.size() >= min && args.size() <= max; };
  const std::string usage = "error: bad arguments for " + command;

  if (command == "quit") {
    *quit = true;
    return "ok";
  }
  if (command == "broker-down" || command == "broker-up") {
    if (!arity(1, 1) || numbers[0] < 0) return usage;
    auto id = static_cast<int32_t>(numbers[0]);
    return Result(command == "broker-down" ? rd_kafka_mock_broker_set_down(cluster, id)
                                           : rd_kafka_mock_broker_set_up(cluster, id));
  }
  if (command == "broker-rtt") {
    if (!arity(2, 2) || numbers[0] < 0 || numbers[1] < 0) return usage;
    return Result(rd_kafka_mock_broker_set_rtt(cluster, static_cast<int32_t>(numbers[0]),
                                               static_cast<int>(numbers[1])));
  }
  if (command == "create-topic") {
    if (!arity(2, 3) || numbers[1] < 1 || (args.size() == 3 && numbers[2] < 1)) return usage;
    int replication = args.size() == 3 ? static_cast<int>(numbers[2]) : 1;
    return Result(rd_kafka_mock_topic_create(cluster, args[0].c_str(), static_cast<int>(numbers[1]),
                                             replication));
  }
  if (command == "partition-leader") {
    if (!arity(3, 3) || numbers[1] < 0 || numbers[2] < 0) return usage;
    return Result(rd_kafka_mock_partition_set_leader(cluster, args[0].c_str(),
                                                     static_cast<int32_t>(numbers[1]),
                                                     static_cast<int32_t>(numbers[2])));
  }
  if (command == "request-errors") {
    if (args.size() < 2 || numbers[0] < 0) return usage;
    std::vector<rd_kafka_resp_err_t> errors;
    for (size_t i = 1; i < args.size(); ++i) {
      auto err = ParseError(args[i]);
      if (!err) return "error: unknown error code " + args[i];
      errors.push_back(*err);
    }
    rd_kafka_mock_push_request_errors_array(cluster, static_cast<int16_t>(numbers[0]),
                                            errors.size(), errors.data());
    return "ok";
  }
  if (command == "clear-request-errors") {
    if (!arity(1, 1) || numbers[0] < 0) return usage;
    rd_kafka_mock_clear_request_errors(cluster, static_cast<int16_t>(numbers[0]));
    return "ok";
  }
  return "error: unknown command " + command;
}

void Answer(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

// Reads stdin lines without blocking signal handling; returns false on EOF.
bool ServeCommands(rd_kafka_mock_cluster_t* cluster, bool ignore_stdin) {
  std::string buffer;
  char chunk[4096];
  while (!g_stop) {
    if (ignore_stdin) {
      poll(nullptr, 0, 200);
      continue;
    }
    pollfd fd{STDIN_FILENO, POLLIN, 0};
    if (poll(&fd, 1, 200) <= 0) continue;
    ssize_t n = read(STDIN_FILENO, chunk, sizeof chunk);
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<size_t>(n));
    for (size_t eol; (eol = buffer.find('\n')) != std::string::npos;) {
      std::string line = buffer.substr(0, eol);
      buffer.erase(0, eol + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      bool quit = false;
      Answer(Execute(cluster, line, &quit));
      if (quit) return true;
    }
  }
  return true;
}

int Usage(const char* program) {
  std::fprintf(stderr, "usage: %s [--brokers N] [--ignore-stdin]\n", program);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int brokers = 3;
  bool ignore_stdin = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--brokers" && i + 1 < argc) {
      auto n = ParseInt(argv[++i]);
      if (!n || *n < 1 || *n > 64) return Usage(argv[0]);
      brokers = static_cast<int>(*n);
    } else if (arg == "--ignore-stdin") {
      ignore_stdin = true;
    } else {
      return Usage(argv[0]);
    }
  }
  std::signal(SIGTERM, OnSignal);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGPIPE, SIG_IGN);

  char errstr[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  // The handle only hosts the cluster; its "no bootstrap.servers" notice would be noise.
  rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof errstr);
  HandlePtr handle(rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr), &rd_kafka_destroy);
  if (!handle) {
    std::fprintf(stderr, "kafka-mock-cluster: rd_kafka_new: %s\n", errstr);
    return 1;
  }
  rd_kafka_mock_cluster_t* cluster = rd_kafka_mock_cluster_new(handle.get(), brokers);
  if (cluster == nullptr) {
    std::fprintf(stderr, "kafka-mock-cluster: could not create the mock cluster\n");
    return 1;
  }
  Answer(rd_kafka_mock_cluster_bootstraps(cluster));
  ServeCommands(cluster, ignore_stdin);
  rd_kafka_mock_cluster_destroy(cluster);
  return 0;
}
