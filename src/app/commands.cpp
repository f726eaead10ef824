#include "commands.h"

#include <signal.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "bridge.h"
#include "stored_resources.h"
#include "topicbridge/fhirpath.h"
#include "topicbridge/json_writer.h"
#include "topicbridge/sink_factory.h"
#include "topicbridge/topic_matcher.h"

namespace topicbridge {

namespace {

void PrintProblems(const std::vector<ConfigProblem>& problems, const std::string& file) {
  for (const auto& p : problems) std::cerr << file << ": " << p.ToString() << "\n";
}

// spdlog flag %j: the message as a JSON string body, for JSON log lines.
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string escaped;
    JsonWriter::AppendEscaped(&escaped, std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

}  // namespace

void ConfigureLogging(const LogConfig& log) {
  auto logger = spdlog::stderr_color_mt("topicbridge");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log.level));
  if (log.format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('j').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ","level":"%l","message":"%j"})");
    spdlog::set_formatter(std::move(formatter));
  } else {
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %v", spdlog::pattern_time_type::utc);
  }
  spdlog::flush_on(spdlog::level::info);
}

int CheckCommand(const std::string& config_path) {
  auto loaded = LoadConfigFile(config_path);
  auto problems = loaded.problems;
  if (problems.empty()) {
    TopicMatcher matcher(loaded.config.topics, &problems);
    for (const auto& d : loaded.config.destinations) {
      auto found = ValidateSinkParameters(d);
      problems.insert(problems.end(), found.begin(), found.end());
    }
  }
  if (problems.empty() && loaded.config.topics_from_database) {
    // The rows Aidbox holds are checked too: run would leave the bad ones out.
    StoredResources stored;
    try {
      stored.Load(loaded.config.postgres.dsn, loaded.config.postgres.schema);
      problems = stored.Problems();
      std::vector<TopicConfig> topics = stored.Topics();
      TopicMatcher matcher(topics, &problems);
      for (const auto& d : stored.Destinations()) {
        auto found = ValidateSinkParameters(d);
        problems.insert(problems.end(), found.begin(), found.end());
      }
    } catch (const std::exception& e) {
      problems.push_back({"aidbox.topics_from_database",
                          std::string("cannot read Aidbox's topic tables: ") + e.what()});
    }
  }
  if (!problems.empty()) {
    PrintProblems(problems, config_path);
    return 1;
  }
  std::cout << config_path << ": ok (" << loaded.config.topics.size() << " topics, "
            << loaded.config.destinations.size() << " destinations)\n";
  return 0;
}

int RunCommand(const std::string& config_path) {
  auto loaded = LoadConfigFile(config_path);
  if (!loaded.problems.empty()) {
    PrintProblems(loaded.problems, config_path);
    return 1;
  }
  ConfigureLogging(loaded.config.log);
  // Signals are taken by a thread of their own, so that a stop can also wake
  // a reader blocked on a full at-least-once window.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Bridge bridge(std::move(loaded.config));
  if (auto problems = bridge.Prepare(); !problems.empty()) {
    // Logging is configured by now: these are log lines (JSON ones with log.format json).
    for (const auto& p : problems) spdlog::critical("{}: {}", config_path, p.ToString());
    return 1;
  }
  std::atomic<bool> stop{false};
  std::atomic<bool> exiting{false};  // Run returned by itself: the waiter is woken, not signalled
  std::thread waiter([&] {
    int received = 0;
    sigwait(&signals, &received);
    if (exiting) return;
    spdlog::info("received {}: stopping, draining in-flight messages",
                 received == SIGTERM ? "SIGTERM" : "SIGINT");
    stop = true;
  });
  int code = 0;
  try {
    code = bridge.Run(stop);
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    code = 2;
  }
  if (!stop) {
    exiting = true;
    pthread_kill(waiter.native_handle(), SIGTERM);
  }
  waiter.join();
  return code;
}

int FhirpathCommand(const FhirpathArguments& args) {
  auto compiled = fhirpath::Expression::Compile(args.expression);
  if (auto* syntax = std::get_if<fhirpath::SyntaxError>(&compiled)) {
    std::cerr << "syntax error at column " << syntax->column << ": " << syntax->message << "\n";
    return 2;
  }
  // One parser per document: each element must stay valid through the evaluation.
  simdjson::dom::parser resource_parser, current_parser, previous_parser;
  const auto load = [](simdjson::dom::parser& parser, const std::string& path,
                       std::optional<simdjson::dom::element>* out) {
    if (path.empty()) return true;
    simdjson::dom::element element;
    if (auto error = parser.load(path).get(element); error) {
      std::cerr << "cannot read " << path << ": " << simdjson::error_message(error) << "\n";
      return false;
    }
    *out = element;
    return true;
  };
  fhirpath::Context context;
  if (!load(resource_parser, args.resource, &context.resource) ||
      !load(current_parser, args.current, &context.current) ||
      !load(previous_parser, args.previous, &context.previous))
    return 1;
  if (!context.resource) context.resource = context.current;
  for (const auto& v : args.variables) {
    const auto eq = v.find('=');
    if (eq == std::string::npos || eq == 0 ||
        !context.SetVariableJson(v.substr(0, eq), v.substr(eq + 1))) {
      std::cerr << "bad --var " << v << ": expected NAME=JSON, e.g. --var limit=180\n";
      return 1;
    }
  }
  const auto result = fhirpath::Evaluate(std::get<fhirpath::Expression>(compiled), context);
  if (!result.ok()) {
    std::cerr << "evaluation error: " << result.error().message << "\n";
    return 3;
  }
  std::cout << fhirpath::PrintResultJson(result.values()) << "\n";
  return 0;
}

}  // namespace topicbridge
