// ParameterSchema: which AidboxTopicDestination parameters each sink kind takes,
// with their value[x] types; used by ValidateSinkParameters and the option
// readers. Internal to src/sinks.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "topicbridge/config.h"

namespace topicbridge::sinks {

enum class ValueKind { kString, kInteger, kBoolean };

struct ParameterSpec {
  const char* name;
  ValueKind kind;
  bool required;
  bool secret;  // never echoed in messages
};

// nullptr for an unknown kind.
const std::vector<ParameterSpec>* SpecsForKind(std::string_view kind);

// Checks presence, repetition, unknown names and value[x] types.
void CheckParameterShapes(const DestinationConfig& destination,
                          const std::vector<ParameterSpec>& specs,
                          std::vector<ConfigProblem>* problems);

// Typed accessors for parameters that passed CheckParameterShapes.
std::string StringParameter(const DestinationConfig& destination, const char* name,
                            std::string fallback = "");
std::int64_t IntegerParameter(const DestinationConfig& destination, const char* name,
                              std::int64_t fallback);
bool BooleanParameter(const DestinationConfig& destination, const char* name, bool fallback);

// The parameter's key path for messages ("destinations[0].parameter[2]"), or
// "<destination path>.parameter" when it is absent.
std::string ParameterPath(const DestinationConfig& destination, const char* name);

// Replaces every occurrence of each non-empty secret in `text` with "***".
std::string Scrub(std::string text, const std::vector<std::string>& secrets);

// Passwords or tokens embedded in URLs ("nats://user:pass@host" → "pass").
std::vector<std::string> UrlSecrets(const std::string& url);

// "nats://user:pass@host:4222" → "nats://host:4222" (each comma-separated URL).
std::string RedactUrl(const std::string& url);

}  // namespace topicbridge::sinks
