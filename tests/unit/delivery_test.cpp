#include <doctest/doctest.h>

#include <functional>
#include <mutex>
#include <vector>

#include "topicbridge/destination_queue.h"
#include "topicbridge/lsn_tracker.h"
#include "topicbridge/unprocessable_policy.h"

using namespace topicbridge;
using namespace std::chrono_literals;

namespace {

// A sink whose completions the test triggers by hand, like a broker would.
class ManualSink : public Sink {
 public:
  void Publish(OutboundMessage message, PublishCallback done) override {
    std::lock_guard lock(mutex);
    published.push_back(message.body);
    callbacks.push_back(std::move(done));
  }
  bool Connected() const override { return true; }
  void Flush(std::chrono::milliseconds) override {}

  // Completes the oldest outstanding publish.
  void Complete(bool ok) {
    PublishCallback done;
    {
      std::lock_guard lock(mutex);
      REQUIRE(!callbacks.empty());
      done = std::move(callbacks.front());
      callbacks.erase(callbacks.begin());
    }
    done(PublishResult{ok, true, ok ? "" : "broker unavailable"});
  }
  std::size_t Outstanding() {
    std::lock_guard lock(mutex);
    return callbacks.size();
  }

  std::mutex mutex;
  std::vector<std::string> published;
  std::vector<PublishCallback> callbacks;
};

OutboundMessage Message(std::string body) { return {"subject", "", "", std::move(body)}; }

}  // namespace

TEST_CASE("the confirmed LSN waits for every earlier acknowledgement") {
  LsnTracker t;
  const auto a = t.BeginTransaction();
  t.AddPending(a);
  t.CommitTransaction(a, 100);
  const auto b = t.BeginTransaction();  // no at-least-once work
  t.CommitTransaction(b, 200);
  CHECK(t.Confirmable() == 0);  // b is done but a is not
  CHECK_FALSE(t.Idle());
  t.Acknowledge(a);
  CHECK(t.Confirmable() == 200);
  CHECK(t.Idle());
}

TEST_CASE("an open transaction is never confirmed, and an aborted one is forgotten") {
  LsnTracker t;
  CHECK_FALSE(t.InTransaction());
  const auto a = t.BeginTransaction();
  CHECK(t.InTransaction());
  t.AddPending(a);
  t.Acknowledge(a);
  CHECK(t.Confirmable() == 0);
  t.AbortOpenTransaction();
  CHECK(t.Idle());
  CHECK_FALSE(t.InTransaction());
  t.Acknowledge(a);  // a late ack of the forgotten transaction is harmless
  const auto b = t.BeginTransaction();
  t.CommitTransaction(b, 300);
  CHECK_FALSE(t.InTransaction());
  CHECK(t.Confirmable() == 300);
}

TEST_CASE("best-effort drops and counts what does not fit in flight") {
  ManualSink sink;
  DestinationStatus status("basic", "nats-core-best-effort", "t");
  DeliveryLimits limits;
  limits.max_in_flight = 2;
  DestinationQueue queue(&sink, &status, nullptr, limits);
  queue.Offer(Message("1"));
  queue.Offer(Message("2"));
  queue.Offer(Message("3"));  // over the limit
  CHECK(status.Counters().lost == 1);
  sink.Complete(true);
  sink.Complete(false);
  const auto c = status.Counters();
  CHECK(c.delivered == 1);
  CHECK(c.lost == 2);
  CHECK(c.in_flight == 0);
  CHECK(queue.Drain(10ms));
}

TEST_CASE("at-least-once retries a failed publish and acknowledges only on success") {
  ManualSink sink;
  DestinationStatus status("js", "nats-jetstream-at-least-once", "t");
  LsnTracker tracker;
  DeliveryLimits limits;
  limits.initial_backoff = 1ms;
  DestinationQueue queue(&sink, &status, &tracker, limits);
  const auto tx = tracker.BeginTransaction();
  REQUIRE(queue.Submit(Message("a"), tx));
  tracker.CommitTransaction(tx, 500);
  sink.Complete(false);
  CHECK(tracker.Confirmable() == 0);
  for (int i = 0; i < 200 && sink.Outstanding() == 0; ++i) std::this_thread::sleep_for(5ms);
  REQUIRE(sink.Outstanding() == 1);  // the retry
  sink.Complete(true);
  CHECK(tracker.Confirmable() == 500);
  const auto c = status.Counters();
  CHECK(c.delivered == 1);
  CHECK(c.delivery_attempts == 1);
  CHECK(sink.published.size() == 2);
  CHECK(sink.published[1] == "a");
}

TEST_CASE("a full at-least-once window blocks the submitter until an ack") {
  ManualSink sink;
  DestinationStatus status("js", "nats-jetstream-at-least-once", "t");
  LsnTracker tracker;
  DeliveryLimits limits;
  limits.max_in_flight = 1;
  DestinationQueue queue(&sink, &status, &tracker, limits);
  const auto tx = tracker.BeginTransaction();
  REQUIRE(queue.Submit(Message("1"), tx));
  std::atomic<bool> second_taken{false};
  std::thread submitter([&] {
    queue.Submit(Message("2"), tx);
    second_taken = true;
  });
  std::this_thread::sleep_for(50ms);
  CHECK_FALSE(second_taken.load());
  sink.Complete(true);
  submitter.join();
  CHECK(second_taken.load());
  sink.Complete(true);
  tracker.CommitTransaction(tx, 42);
  CHECK(tracker.Confirmable() == 42);
}

TEST_CASE("Stop wakes a blocked submitter without taking its message") {
  ManualSink sink;
  DestinationStatus status("js", "kafka-at-least-once", "t");
  LsnTracker tracker;
  DeliveryLimits limits;
  limits.max_in_flight = 1;
  DestinationQueue queue(&sink, &status, &tracker, limits);
  const auto tx = tracker.BeginTransaction();
  REQUIRE(queue.Submit(Message("1"), tx));
  bool taken = true;
  std::thread submitter([&] { taken = queue.Submit(Message("2"), tx); });
  std::this_thread::sleep_for(20ms);
  queue.Stop();
  submitter.join();
  CHECK_FALSE(taken);
  sink.Complete(true);
}

namespace {
// Polls `ready` for up to two seconds (completions and retries run on other threads).
bool Eventually(const std::function<bool()>& ready) {
  for (int i = 0; i < 400; ++i) {
    if (ready()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return ready();
}
}  // namespace

TEST_CASE("an unhealthy destination probes with the oldest message, then resends in order") {
  ManualSink sink;
  DestinationStatus status("js", "nats-jetstream-at-least-once", "t");
  LsnTracker tracker;
  DeliveryLimits limits;
  limits.initial_backoff = 1ms;
  DestinationQueue queue(&sink, &status, &tracker, limits);
  const auto tx = tracker.BeginTransaction();
  REQUIRE(queue.Submit(Message("a"), tx));
  REQUIRE(queue.Submit(Message("b"), tx));
  sink.Complete(false);  // a fails: the destination is unhealthy
  REQUIRE(queue.Submit(Message("c"), tx));
  sink.Complete(false);  // b fails too
  // c waits behind a and b; a alone probes the broker.
  REQUIRE(Eventually([&] { return sink.Outstanding() == 1; }));
  CHECK(sink.published == std::vector<std::string>{"a", "b", "a"});
  sink.Complete(false);  // the probe fails: a probes again after a longer backoff
  REQUIRE(Eventually([&] { return sink.Outstanding() == 1; }));
  CHECK(sink.published.size() == 4);
  CHECK(sink.published.back() == "a");
  sink.Complete(true);  // the broker is back: the rest follows in submission order
  REQUIRE(Eventually([&] { return sink.Outstanding() == 2; }));
  CHECK(sink.published == std::vector<std::string>{"a", "b", "a", "a", "b", "c"});
  sink.Complete(true);
  sink.Complete(true);
  tracker.CommitTransaction(tx, 700);
  CHECK(tracker.Confirmable() == 700);
  const auto c = status.Counters();
  CHECK(c.delivered == 3);
  CHECK(c.delivery_attempts == 3);  // failed attempts only
  CHECK(queue.Drain(10ms));
}

TEST_CASE("a blocked Submit calls its wait hook and gives up when the hook says so") {
  ManualSink sink;
  DestinationStatus status("kafka", "kafka-at-least-once", "t");
  LsnTracker tracker;
  DeliveryLimits limits;
  limits.max_in_flight = 1;
  limits.wait_tick = 2ms;
  DestinationQueue queue(&sink, &status, &tracker, limits);
  const auto tx = tracker.BeginTransaction();
  REQUIRE(queue.Submit(Message("1"), tx));
  int calls = 0;
  CHECK_FALSE(queue.Submit(Message("2"), tx, [&] { return ++calls < 3; }));
  CHECK(calls == 3);
  CHECK(sink.published.size() == 1);
  // The message not taken holds its transaction back even when everything else is acked.
  sink.Complete(true);
  tracker.CommitTransaction(tx, 900);
  CHECK(tracker.Confirmable() == 0);
  tracker.AbortOpenTransaction();  // no-op: the transaction is committed, not open
  CHECK(tracker.Confirmable() == 0);
}

TEST_CASE("transactions without at-least-once work behind a stuck one cost no memory") {
  LsnTracker t;
  const auto stuck = t.BeginTransaction();
  t.AddPending(stuck);
  t.CommitTransaction(stuck, 10);
  for (Lsn lsn = 20; lsn < 20000; lsn += 10) t.CommitTransaction(t.BeginTransaction(), lsn);
  CHECK(t.Held() == 2);
  CHECK(t.Confirmable() == 0);
  t.Acknowledge(stuck);
  CHECK(t.Confirmable() == 19990);
  CHECK(t.Held() == 0);
}

TEST_CASE("a finished transaction is not merged into a later one that still waits") {
  LsnTracker t;
  const auto a = t.BeginTransaction();
  t.AddPending(a);
  t.CommitTransaction(a, 10);
  t.CommitTransaction(t.BeginTransaction(), 20);  // done, behind a
  const auto c = t.BeginTransaction();
  t.AddPending(c);
  t.CommitTransaction(c, 30);
  t.Acknowledge(a);
  CHECK(t.Confirmable() == 20);  // c does not hold back the one before it
  t.Acknowledge(c);
  CHECK(t.Confirmable() == 30);
}

TEST_CASE("a reconnected sink is probed at once instead of after the backoff") {
  ManualSink sink;
  DestinationStatus status("js", "nats-jetstream-at-least-once", "t");
  LsnTracker tracker;
  DeliveryLimits limits;
  limits.initial_backoff = 60s;
  DestinationQueue queue(&sink, &status, &tracker, limits);
  status.SetConnected(false);
  const auto tx = tracker.BeginTransaction();
  REQUIRE(queue.Submit(Message("a"), tx));
  sink.Complete(false);
  std::this_thread::sleep_for(150ms);
  CHECK(sink.Outstanding() == 0);  // backing off
  status.SetConnected(true);
  REQUIRE(Eventually([&] { return sink.Outstanding() == 1; }));
  sink.Complete(true);
  CHECK(queue.Drain(100ms));
}

TEST_CASE("an unprocessable change halts only where an at-least-once destination could want it") {
  UnprocessablePolicy policy;
  // Only best-effort destinations: everything is skipped, even a message that was not parsed.
  CHECK_FALSE(policy.MustHalt("Patient"));
  CHECK_FALSE(policy.MustHalt(""));
  policy.AddAtLeastOnceType("Patient");
  CHECK(policy.MustHalt("Patient"));
  CHECK_FALSE(policy.MustHalt("Observation"));  // its topics have best-effort destinations only
  CHECK(policy.MustHalt(""));                   // unknown type: could be a Patient
  policy.Clear();
  CHECK_FALSE(policy.MustHalt(""));
}
