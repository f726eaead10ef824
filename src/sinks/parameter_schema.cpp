#include "parameter_schema.h"

#include <map>

namespace topicbridge::sinks {

namespace {

const std::vector<ParameterSpec> kNatsSpecs = {
    {"url", ValueKind::kString, true, false},
    {"subject", ValueKind::kString, true, false},
    {"connectionName", ValueKind::kString, false, false},
    {"sslContext", ValueKind::kString, false, false},
    {"credentialsFilePath", ValueKind::kString, false, false},
    {"nkeySeedFilePath", ValueKind::kString, false, false},
    {"username", ValueKind::kString, false, false},
    {"password", ValueKind::kString, false, true},
    {"tlsCaFile", ValueKind::kString, false, false},
    {"tlsCertFile", ValueKind::kString, false, false},
    {"tlsKeyFile", ValueKind::kString, false, false},
};

const std::vector<ParameterSpec> kKafkaSpecs = {
    {"kafkaTopic", ValueKind::kString, true, false},
    {"bootstrapServers", ValueKind::kString, true, false},
    {"compressionType", ValueKind::kString, false, false},
    {"batchSize", ValueKind::kInteger, false, false},
    {"deliveryTimeoutMs", ValueKind::kInteger, false, false},
    {"maxBlockMs", ValueKind::kInteger, false, false},
    {"maxRequestSize", ValueKind::kInteger, false, false},
    {"requestTimeoutMs", ValueKind::kInteger, false, false},
    {"securityProtocol", ValueKind::kString, false, false},
    {"saslMechanism", ValueKind::kString, false, false},
    {"saslJaasConfig", ValueKind::kString, false, true},
    {"sslKeystoreKey", ValueKind::kString, false, true},
    {"sslKeystoreCertificateChain", ValueKind::kString, false, false},
    {"sslTruststoreCertificates", ValueKind::kString, false, false},
    {"keyByResourceId", ValueKind::kBoolean, false, false},
};

bool TypeMatches(ValueKind kind, const std::string& value_type) {
  switch (kind) {
    case ValueKind::kInteger:
      return value_type == "valueInteger" || value_type == "valueUnsignedInt" ||
             value_type == "valuePositiveInt";
    case ValueKind::kBoolean:
      return value_type == "valueBoolean";
    case ValueKind::kString:
      return value_type == "valueString" || value_type == "valueUrl" || value_type == "valueUri" ||
             value_type == "valueCode";
  }
  return false;
}

const char* ExpectedType(ValueKind kind) {
  switch (kind) {
    case ValueKind::kInteger:
      return "valueInteger";
    case ValueKind::kBoolean:
      return "valueBoolean";
    case ValueKind::kString:
      return "valueString";
  }
  return "";
}

std::string KnownNames(const std::vector<ParameterSpec>& specs) {
  std::string names;
  for (const ParameterSpec& spec : specs) {
    if (!names.empty()) names += ", ";
    names += spec.name;
  }
  return names;
}

}  // namespace

const std::vector<ParameterSpec>* SpecsForKind(std::string_view kind) {
  if (kind == "nats-core-best-effort" || kind == "nats-jetstream-at-least-once") return &kNatsSpecs;
  if (kind == "kafka-at-least-once" || kind == "kafka-best-effort") return &kKafkaSpecs;
  return nullptr;
}

void CheckParameterShapes(const DestinationConfig& destination,
                          const std::vector<ParameterSpec>& specs,
                          std::vector<ConfigProblem>* problems) {
  std::map<std::string, const Parameter*> seen;
  for (const Parameter& p : destination.parameters) {
    const ParameterSpec* spec = nullptr;
    for (const ParameterSpec& s : specs) {
      if (p.name == s.name) spec = &s;
    }
    if (spec == nullptr) {
      problems->push_back({p.path, "unknown parameter \"" + p.name + "\" for kind " +
                                       destination.kind + " (known: " + KnownNames(specs) + ")"});
      continue;
    }
    if (!seen.emplace(p.name, &p).second) {
      problems->push_back({p.path, "parameter \"" + p.name + "\" is given more than once"});
      continue;
    }
    if (!TypeMatches(spec->kind, p.value_type)) {
      problems->push_back({p.path, "parameter \"" + p.name + "\" expects " +
                                       ExpectedType(spec->kind) + ", got " +
                                       (p.value_type.empty() ? "no value" : p.value_type)});
      continue;
    }
    if (spec->kind == ValueKind::kString && spec->required && p.text.empty()) {
      problems->push_back({p.path, "parameter \"" + p.name + "\" must not be empty"});
    }
    if (spec->kind == ValueKind::kInteger && p.integer < 0) {
      problems->push_back({p.path, "parameter \"" + p.name + "\" must not be negative"});
    }
  }
  for (const ParameterSpec& spec : specs) {
    if (spec.required && seen.find(spec.name) == seen.end()) {
      problems->push_back({destination.path + ".parameter",
                           "missing required parameter \"" + std::string(spec.name) + "\" (" +
                               ExpectedType(spec.kind) + ") for kind " + destination.kind});
    }
  }
}

namespace {
const Parameter* FindNamed(const DestinationConfig& destination, const char* name) {
  for (const Parameter& p : destination.parameters) {
    if (p.name == name) return &p;
  }
  return nullptr;
}
}  // namespace

std::string StringParameter(const DestinationConfig& destination, const char* name,
                            std::string fallback) {
  const Parameter* p = FindNamed(destination, name);
  return p ? p->text : fallback;
}

std::int64_t IntegerParameter(const DestinationConfig& destination, const char* name,
                              std::int64_t fallback) {
  const Parameter* p = FindNamed(destination, name);
  return p ? p->integer : fallback;
}

bool BooleanParameter(const DestinationConfig& destination, const char* name, bool fallback) {
  const Parameter* p = FindNamed(destination, name);
  return p ? p->boolean : fallback;
}

std::string ParameterPath(const DestinationConfig& destination, const char* name) {
  const Parameter* p = FindNamed(destination, name);
  if (p != nullptr && !p->path.empty()) return p->path;
  return destination.path + ".parameter";
}

std::string Scrub(std::string text, const std::vector<std::string>& secrets) {
  for (const std::string& secret : secrets) {
    if (secret.empty()) continue;
    for (std::size_t at = text.find(secret); at != std::string::npos;
         at = text.find(secret, at + 3)) {
      text.replace(at, secret.size(), "***");
    }
  }
  return text;
}

std::vector<std::string> UrlSecrets(const std::string& url) {
  std::vector<std::string> secrets;
  std::size_t start = 0;
  while (start <= url.size()) {
    std::size_t end = url.find(',', start);
    if (end == std::string::npos) end = url.size();
    const std::string one = url.substr(start, end - start);
    const std::size_t scheme = one.find("://");
    const std::size_t host_from = scheme == std::string::npos ? 0 : scheme + 3;
    const std::size_t at = one.rfind('@');
    if (at != std::string::npos && at > host_from) {
      const std::string user_info = one.substr(host_from, at - host_from);
      const std::size_t colon = user_info.find(':');
      // user:password → the password; a lone token is the secret itself.
      secrets.push_back(colon == std::string::npos ? user_info : user_info.substr(colon + 1));
    }
    start = end + 1;
  }
  return secrets;
}

std::string RedactUrl(const std::string& url) {
  std::string out;
  std::size_t start = 0;
  while (start <= url.size()) {
    std::size_t end = url.find(',', start);
    if (end == std::string::npos) end = url.size();
    std::string one = url.substr(start, end - start);
    const std::size_t scheme = one.find("://");
    const std::size_t at = one.rfind('@');
    const std::size_t host_from = scheme == std::string::npos ? 0 : scheme + 3;
    if (at != std::string::npos && at >= host_from) one.erase(host_from, at + 1 - host_from);
    if (!out.empty()) out += ",";
    out += one;
    start = end + 1;
  }
  return out;
}

}  // namespace topicbridge::sinks
