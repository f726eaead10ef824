// Bridge: the pipeline of DESIGN.md on one thread — replication → decode →
// Aidbox row → topic match → notification → destination queues — plus the
// HTTP server and the LSN feedback. Invariant: the LSN confirmed to
// PostgreSQL comes only from the LsnTracker, so it never passes an
// unacknowledged at-least-once notification.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "topicbridge/config.h"

namespace topicbridge {

class Bridge {
 public:
  explicit Bridge(Config config);
  ~Bridge();
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  // Validates and builds everything that needs no network. Returns the
  // problems (empty: ready to Run).
  std::vector<ConfigProblem> Prepare();

  // Streams until `stop` becomes true, then drains in-flight at-least-once
  // messages (up to the configured time), confirms and returns the exit code.
  int Run(const std::atomic<bool>& stop);

  // Wakes a reader blocked on a full at-least-once window. Any thread.
  void Interrupt();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// Sets up spdlog from the `log` section: readable lines or JSON lines.
void ConfigureLogging(const LogConfig& log);

}  // namespace topicbridge
