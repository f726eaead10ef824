#include "topicbridge/sink_factory.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>

#include "nkey.h"
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

void CheckReadable(const DestinationConfig& d, const char* name,
                   std::vector<ConfigProblem>* problems) {
  const std::string path = sinks::StringParameter(d, name);
  if (!path.empty() && access(path.c_str(), R_OK) != 0) {
    problems->push_back({sinks::ParameterPath(d, name), std::string("cannot read file ") + path});
  }
}

void CheckNatsTls(const DestinationConfig& d, std::vector<ConfigProblem>* problems) {
  const std::string ssl = sinks::StringParameter(d, "sslContext", "none");
  const bool tls_url = sinks::StringParameter(d, "url").find("tls://") != std::string::npos;
  if (ssl != "none" && ssl != "tls") {
    problems->push_back({sinks::ParameterPath(d, "sslContext"),
                         "sslContext \"" + ssl + "\": expected \"none\" or \"tls\""});
  } else if (ssl == "none" && tls_url && d.Find("sslContext") != nullptr) {
    problems->push_back({sinks::ParameterPath(d, "sslContext"),
                         "sslContext \"none\" contradicts the tls:// url: use \"tls\""});
  }
  const bool tls = ssl == "tls" || tls_url;
  for (const char* name : {"tlsCaFile", "tlsCertFile", "tlsKeyFile"}) {
    if (!tls && d.Find(name) != nullptr) {
      problems->push_back({sinks::ParameterPath(d, name),
                           std::string(name) + " needs sslContext \"tls\" (or a tls:// url)"});
    }
    CheckReadable(d, name, problems);
  }
  if ((d.Find("tlsCertFile") == nullptr) != (d.Find("tlsKeyFile") == nullptr)) {
    problems->push_back(
        {d.path + ".parameter",
         "tlsCertFile and tlsKeyFile go together (client certificate and its key)"});
  }
}

void CheckNats(const DestinationConfig& d, std::vector<ConfigProblem>* problems) {
  CheckNatsTls(d, problems);
  CheckReadable(d, "credentialsFilePath", problems);
  CheckReadable(d, "nkeySeedFilePath", problems);
  int methods = 0;
  for (const char* name : {"credentialsFilePath", "nkeySeedFilePath", "username"}) {
    if (d.Find(name) != nullptr) ++methods;
  }
  if (methods > 1) {
    problems->push_back({d.path + ".parameter",
                         "choose one way to authenticate: credentialsFilePath, nkeySeedFilePath "
                         "or username/password"});
  }
  if (d.Find("password") != nullptr && d.Find("username") == nullptr) {
    problems->push_back({sinks::ParameterPath(d, "password"), "password needs username"});
  }
}

// Secret files others can read: worth a warning, not a refusal (containers
// often mount secrets 0644 inside a private volume).
void WarnWorldReadable(const DestinationConfig& d) {
  for (const char* name : {"credentialsFilePath", "nkeySeedFilePath", "tlsKeyFile"}) {
    const std::string path = sinks::StringParameter(d, name);
    if (!path.empty() && sinks::WorldReadable(path)) {
      spdlog::warn("destination {}: {} {} is readable by every user: chmod 600 it", d.id, name,
                   path);
    }
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

std::unique_ptr<Sink> MakeSink(const DestinationConfig& destination, SinkEvents events,
                               std::size_t max_in_flight) {
  std::vector<ConfigProblem> problems = ValidateSinkParameters(destination);
  if (!problems.empty()) throw SinkConfigError(std::move(problems));
  WarnWorldReadable(destination);
  try {
    if (destination.kind == "nats-core-best-effort") {
      return MakeNatsCoreSink(NatsOptionsFrom(destination), std::move(events));
    }
    if (destination.kind == "nats-jetstream-at-least-once") {
      JetStreamLimits limits;
      limits.max_pending =
          std::max<std::int64_t>(limits.max_pending, static_cast<std::int64_t>(max_in_flight));
      return MakeJetStreamSink(NatsOptionsFrom(destination), std::move(events), limits);
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
