// NatsConnection: one cnats connection configured from NatsOptions — reconnects
// forever, connects in the background when the server is down at start, and
// forwards connection changes and asynchronous errors (scrubbed) to SinkEvents.
// Internal to src/sinks. Thread-safety: all methods may be called from any thread.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "topicbridge/nats_sink.h"

namespace topicbridge::sinks {

class NatsConnection {
 public:
  // Throws SinkConfigError when cnats rejects the options (e.g. unreadable
  // credentials file); never because the server is unreachable.
  NatsConnection(const NatsOptions& options, SinkEvents events);
  ~NatsConnection();  // closes and waits for the closed callback
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  natsConnection* get() const { return connection_; }
  bool Connected() const;
  // The URL without user info, for messages.
  const std::string& url() const { return redacted_url_; }
  // True for a short while after the server reported a permissions violation:
  // publishing again cannot succeed until permissions change.
  bool PublishDenied() const;
  // The last asynchronous error text (scrubbed).
  std::string LastAsyncError() const;

  // Message with header content-type: application/json (and Nats-Msg-Id when
  // msg_id is non-empty). Returns nullptr on failure, with `error` set.
  natsMsg* NewMessage(const std::string& subject, const std::string& body,
                      const std::string& msg_id, std::string* error) const;
  // natsStatus text plus cnats' last error detail, scrubbed.
  std::string Describe(natsStatus status) const;

 private:
  static void OnConnected(natsConnection* nc, void* closure);
  static void OnDisconnected(natsConnection* nc, void* closure);
  static void OnClosed(natsConnection* nc, void* closure);
  static void OnAsyncError(natsConnection* nc, natsSubscription* sub, natsStatus err,
                           void* closure);
  void Notify(bool connected);

  SinkEvents events_;
  std::vector<std::string> secrets_;
  std::string redacted_url_;
  natsConnection* connection_ = nullptr;

  mutable std::mutex mutex_;
  std::condition_variable closed_cv_;
  bool closed_ = false;
  std::string last_async_error_;
  std::chrono::steady_clock::time_point denied_until_{};
};

}  // namespace topicbridge::sinks
