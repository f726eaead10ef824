// Sink: one connection to a broker that publishes notification messages
// asynchronously. Publish() never blocks the caller for network I/O; the
// completion callback runs once per message, on a library thread, and tells
// whether the broker accepted it (for at-least-once kinds: acknowledged).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace topicbridge {

struct OutboundMessage {
  std::string subject;  // NATS subject or Kafka topic
  std::string key;      // Kafka key (empty: none)
  std::string msg_id;   // replay-stable id for deduplication (empty: none): JetStream's
                        // Nats-Msg-Id, Kafka's header topicbridge-message-id
  std::string body;     // {"topic": ..., "value": <Bundle>}
};

struct PublishResult {
  bool ok = false;
  bool retriable = true;  // false: the broker will never accept this message as is
  std::string error;      // human-readable, never contains secrets
};

using PublishCallback = std::function<void(const PublishResult&)>;

class Sink {
 public:
  virtual ~Sink() = default;
  Sink() = default;
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  // Hands one message to the client library. `done` is called exactly once,
  // possibly before Publish returns, possibly from another thread.
  virtual void Publish(OutboundMessage message, PublishCallback done) = 0;

  // True while the client holds a live connection to the broker.
  virtual bool Connected() const = 0;

  // Waits up to `timeout` for outstanding messages to complete.
  virtual void Flush(std::chrono::milliseconds timeout) = 0;
};

}  // namespace topicbridge
