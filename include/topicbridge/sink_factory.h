// Sink factory: turns an AidboxTopicDestination (kind + parameters) into a
// connected Sink, and validates parameters without connecting (for `check`).
// Invariant: no error text produced here or by a sink contains a secret
// (password, credentials file content, SASL config, key material).
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "topicbridge/config.h"
#include "topicbridge/sink.h"

namespace topicbridge {

// Asynchronous happenings of a sink that are not tied to one message. Both
// callbacks run on a client-library thread and must be quick; either may be empty.
struct SinkEvents {
  std::function<void(bool connected)> on_connection;       // connection up / down
  std::function<void(const std::string& error)> on_error;  // e.g. permissions violation
};

// Thrown by MakeSink when the destination cannot be configured.
class SinkConfigError : public std::runtime_error {
 public:
  explicit SinkConfigError(std::vector<ConfigProblem> problems);
  const std::vector<ConfigProblem>& problems() const { return problems_; }

 private:
  std::vector<ConfigProblem> problems_;
};

// The kinds MakeSink accepts.
const std::vector<std::string>& SupportedSinkKinds();

// Every problem with the destination's kind and parameters: unknown kind,
// missing required parameter, wrong value[x] type, bad value, unknown or
// repeated parameter. Paths look like "destinations[0].parameter[2]". Never
// connects; may read the credentials file's metadata (exists, readable).
std::vector<ConfigProblem> ValidateSinkParameters(const DestinationConfig& destination);

// Validates, then creates the sink. Never fails because a broker is down: the
// client connects in the background and Connected() tells. Throws
// SinkConfigError on invalid configuration. `max_in_flight`: how many messages
// the caller may have published and not yet completed (0: the kind's default);
// the client's own limits are made at least that large, so that a full window
// never turns into failed publishes.
std::unique_ptr<Sink> MakeSink(const DestinationConfig& destination, SinkEvents events,
                               std::size_t max_in_flight = 0);

}  // namespace topicbridge
