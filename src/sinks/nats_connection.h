// NatsConnection: one cnats connection configured from NatsOptions. The first
// attempt is made in the constructor; when it fails (server down, credentials or
// TLS refused) the reason is reported through SinkEvents::on_error and a
// background thread keeps trying, so a refused login is visible, never a hang.
// Once connected, cnats reconnects forever. Connection changes and asynchronous
// errors (scrubbed of secrets) go to SinkEvents.
// Internal to src/sinks. Thread-safety: all methods may be called from any thread.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "topicbridge/nats_sink.h"

namespace topicbridge::sinks {

class NatsConnection {
 public:
  // Runs once, on the thread that established the connection, before
  // Connected() first turns true (e.g. to create a JetStream context).
  using EstablishedHook = std::function<void(natsConnection*)>;

  // Throws SinkConfigError when cnats rejects the options; never because the
  // server is unreachable or refuses the credentials (those are retried).
  NatsConnection(const NatsOptions& options, SinkEvents events, EstablishedHook established = {});
  ~NatsConnection();  // stops connecting, closes and waits for the closed callback
  NatsConnection(const NatsConnection&) = delete;
  NatsConnection& operator=(const NatsConnection&) = delete;

  // Ends the first-connection attempts (idempotent); afterwards the hook never runs.
  void StopConnecting();

  // nullptr until the first connection is established.
  natsConnection* get() const { return connection_.load(std::memory_order_acquire); }
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
  // One connection attempt; true when connected. Reports a failure through
  // on_error unless it repeats the previous report within kRepeatReport.
  bool TryConnect();
  void KeepConnecting();

  SinkEvents events_;
  EstablishedHook established_;
  std::vector<std::string> secrets_;
  std::string redacted_url_;
  natsOptions* options_ = nullptr;
  int retry_wait_ms_;
  std::atomic<natsConnection*> connection_{nullptr};
  std::thread connector_;

  mutable std::mutex mutex_;
  std::condition_variable closed_cv_;
  std::condition_variable stop_cv_;
  bool closed_ = false;
  bool stopping_ = false;
  std::string last_connect_error_;
  std::chrono::steady_clock::time_point last_connect_report_{};
  std::string last_async_error_;
  std::chrono::steady_clock::time_point denied_until_{};
};

}  // namespace topicbridge::sinks
