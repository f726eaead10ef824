#include "topicbridge/sink_factory.h"

#include <unistd.h>

#include "parameter_schema.h"
#include "topicbridge/jetstream_sink.h"
#include "topicbridge/kafka_sink.h"
#include "topicbridge/nats_sink.h"

namespace topicbridge {

namespace {

std::string JoinProblems(const std::vector<ConfigProblem>& problems) {
  std::string text;
  for (const ConfigProblem& p : problems) {
    if (!text.empty()) text += "; ";
    text += p.ToString();
  }
  return text;
}

void CheckNats(const DestinationConfig& d, std::vector<ConfigProblem>* problems) {
  const std::string ssl = sinks::StringParameter(d, "sslContext", "none");
  if (ssl != "none") {
    problems->push_back({sinks::ParameterPath(d, "sslContext"),
                         "sslContext \"" + ssl +
                             "\" is not supported yet (TLS for NATS is not implemented): use "
                             "\"none\" or leave it out"});
  }
  const std::string url = sinks::StringParameter(d, "url");
  if (url.find("tls://") != std::string::npos) {
    problems->push_back({sinks::ParameterPath(d, "url"),
                         "tls:// URLs need TLS, which is not implemented yet: use nats://"});
  }
  const std::string creds = sinks::StringParameter(d, "credentialsFilePath");
  if (!creds.empty() && access(creds.c_str(), R_OK) != 0) {
    problems->push_back(
        {sinks::ParameterPath(d, "credentialsFilePath"), "cannot read credentials file " + creds});
  }
}

}  // namespace

SinkConfigError::SinkConfigError(std::vector<ConfigProblem> problems)
    : std::runtime_error(JoinProblems(problems)), problems_(std::move(problems)) {}

const std::vector<std::string>& SupportedSinkKinds() {
  static const std::vector<std::string> kinds = {"nats-core-best-effort",
                                                 "nats-jetstream-at-least-once",
                                                 "kafka-at-least-once", "kafka-best-effort"};
  return kinds;
}

std::vector<ConfigProblem> ValidateSinkParameters(const DestinationConfig& destination) {
  std::vector<ConfigProblem> problems;
  const auto* specs = sinks::SpecsForKind(destination.kind);
  if (specs == nullptr) {
    std::string known;
    for (const std::string& k : SupportedSinkKinds()) known += (known.empty() ? "" : ", ") + k;
    problems.push_back({destination.path + ".kind", "unknown kind \"" + destination.kind +
                                                        "\" (expected one of " + known + ")"});
    return problems;
  }
  sinks::CheckParameterShapes(destination, *specs, &problems);
  if (!problems.empty()) return problems;
  if (destination.kind.starts_with("nats-")) {
    CheckNats(destination, &problems);
  } else {
    KafkaOptionsFrom(destination, &problems);
  }
  return problems;
}

std::unique_ptr<Sink> MakeSink(const DestinationConfig& destination, SinkEvents events) {
  std::vector<ConfigProblem> problems = ValidateSinkParameters(destination);
  if (!problems.empty()) throw SinkConfigError(std::move(problems));
  try {
    if (destination.kind == "nats-core-best-effort") {
      return MakeNatsCoreSink(NatsOptionsFrom(destination), std::move(events));
    }
    if (destination.kind == "nats-jetstream-at-least-once") {
      return MakeJetStreamSink(NatsOptionsFrom(destination), std::move(events));
    }
    return MakeKafkaSink(KafkaOptionsFrom(destination, &problems), std::move(events));
  } catch (const SinkConfigError& e) {
    // The client libraries do not know where the destination came from.
    std::vector<ConfigProblem> located = e.problems();
    for (ConfigProblem& p : located) {
      if (p.path.empty()) p.path = destination.path;
    }
    throw SinkConfigError(std::move(located));
  }
}

}  // namespace topicbridge
