#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <string>
#include <thread>
#include <vector>

#include "topicbridge/destination_status.h"
#include "topicbridge/metrics.h"
#include "topicbridge/status_registry.h"

using namespace topicbridge;

namespace {

// name → parameter object of a Parameters resource (first occurrence).
const rapidjson::Value* FindParameter(const rapidjson::Document& doc, const char* name) {
  for (const auto& p : doc["parameter"].GetArray()) {
    if (std::string(p["name"].GetString()) == name) return &p;
  }
  return nullptr;
}

std::vector<std::string> ParameterNames(const rapidjson::Document& doc) {
  std::vector<std::string> names;
  for (const auto& p : doc["parameter"].GetArray()) names.push_back(p["name"].GetString());
  return names;
}

}  // namespace

TEST_CASE("best-effort $status lists delivered, in process and lost as valueDecimal") {
  DestinationStatus status("basic", "nats-core-best-effort", "http://example.org/topic");
  for (int i = 0; i < 3; ++i) status.OnQueued();
  status.OnInFlight();
  status.OnInFlight();
  status.OnDelivered();
  status.OnLost("nats: no connection", LostFrom::kInFlight);
  status.OnQueued();
  status.OnLost("queue full", LostFrom::kNotQueued);

  rapidjson::Document doc;
  doc.Parse(RenderStatusParameters(status).c_str());
  REQUIRE_FALSE(doc.HasParseError());
  CHECK(std::string(doc["resourceType"].GetString()) == "Parameters");
  CHECK(ParameterNames(doc) == std::vector<std::string>{"messagesDelivered", "messagesInProcess",
                                                        "messagesLost", "startTimestamp", "status",
                                                        "lastErrorDetail", "lastErrorDetail"});
  CHECK((*FindParameter(doc, "messagesDelivered"))["valueDecimal"].GetUint64() == 1);
  // queued (2) + in flight (0)
  CHECK((*FindParameter(doc, "messagesInProcess"))["valueDecimal"].GetUint64() == 2);
  CHECK((*FindParameter(doc, "messagesLost"))["valueDecimal"].GetUint64() == 2);
  CHECK(std::string((*FindParameter(doc, "status"))["valueString"].GetString()) == "active");
  const std::string start = (*FindParameter(doc, "startTimestamp"))["valueDateTime"].GetString();
  CHECK(start.size() == 24);
  CHECK(start.back() == 'Z');
  const auto& newest = (*FindParameter(doc, "lastErrorDetail"))["part"];
  CHECK(std::string(newest[0]["name"].GetString()) == "message");
  CHECK(std::string(newest[0]["valueString"].GetString()) == "queue full");
  CHECK(std::string(newest[1]["name"].GetString()) == "timestamp");
  CHECK(newest[1].HasMember("valueDateTime"));
}

TEST_CASE("at-least-once $status has attempts and queued, no messagesLost") {
  DestinationStatus status("durable", "kafka-at-least-once", "t");
  status.OnQueued();
  status.OnQueued();
  status.OnInFlight();
  status.OnAttemptFailed("broker down");
  status.OnAttemptFailed("broker down");
  rapidjson::Document doc;
  doc.Parse(RenderStatusParameters(status).c_str());
  REQUIRE_FALSE(doc.HasParseError());
  CHECK(ParameterNames(doc) ==
        std::vector<std::string>{"messagesDelivered", "messagesDeliveryAttempts",
                                 "messagesInProcess", "messagesQueued", "startTimestamp", "status",
                                 "lastErrorDetail", "lastErrorDetail"});
  CHECK((*FindParameter(doc, "messagesDeliveryAttempts"))["valueDecimal"].GetUint64() == 2);
  CHECK((*FindParameter(doc, "messagesInProcess"))["valueDecimal"].GetUint64() == 1);
  CHECK((*FindParameter(doc, "messagesQueued"))["valueDecimal"].GetUint64() == 1);
}

TEST_CASE("only the five newest errors are kept, newest first, JSON-escaped") {
  DestinationStatus status("d", "kafka-best-effort", "t");
  for (int i = 0; i < 8; ++i) status.RecordError("error \"" + std::to_string(i) + "\"\n");
  const auto errors = status.LatestErrors();
  REQUIRE(errors.size() == 5);
  CHECK(errors.front().message == "error \"7\"\n");
  CHECK(errors.back().message == "error \"3\"\n");
  CHECK(status.Counters().errors == 8);
  rapidjson::Document doc;
  doc.Parse(RenderStatusParameters(status).c_str());
  REQUIRE_FALSE(doc.HasParseError());
}

TEST_CASE("counters stay exact under concurrent updates") {
  DestinationStatus status("d", "nats-jetstream-at-least-once", "t");
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&status] {
      for (int i = 0; i < 10000; ++i) {
        status.OnQueued();
        status.OnInFlight();
        status.OnDelivered();
      }
    });
  }
  for (auto& t : threads) t.join();
  const auto c = status.Counters();
  CHECK(c.delivered == 40000);
  CHECK(c.queued == 0);
  CHECK(c.in_flight == 0);
}

TEST_CASE("registry keeps stable references and finds destinations by id") {
  StatusRegistry registry;
  DestinationStatus& a = registry.AddDestination("a", "kafka-best-effort", "t1");
  for (int i = 0; i < 100; ++i) registry.AddDestination("x" + std::to_string(i), "k", "t");
  CHECK(&registry.AddDestination("a", "other", "t") == &a);
  CHECK(registry.FindDestination("a") == &a);
  CHECK(registry.FindDestination("missing") == nullptr);
  CHECK(registry.Destinations().size() == 101);
  TopicCounters& topic = registry.Topic("http://t");
  CHECK(&registry.Topic("http://t") == &topic);
}

TEST_CASE("Prometheus text has HELP/TYPE and labelled samples") {
  StatusRegistry registry;
  DestinationStatus& d = registry.AddDestination("basic", "nats-core-best-effort", "t");
  d.OnQueued();
  d.OnInFlight();
  d.OnDelivered();
  d.SetConnected(true);
  registry.Topic("http://x/\"q\"").events_matched += 3;
  registry.Table("patient").changes_decoded += 7;
  registry.replication().slot_lag_bytes = 4096;
  registry.replication().connected = true;
  const std::string text = RenderPrometheus(registry);
  CHECK(text.find("# HELP topicbridge_destination_messages_delivered_total ") != std::string::npos);
  CHECK(text.find("# TYPE topicbridge_destination_messages_delivered_total counter\n") !=
        std::string::npos);
  CHECK(text.find("topicbridge_destination_messages_delivered_total{destination=\"basic\",kind="
                  "\"nats-core-best-effort\"} 1\n") != std::string::npos);
  CHECK(text.find("topicbridge_destination_connected{destination=\"basic\"") != std::string::npos);
  CHECK(text.find("topicbridge_topic_events_matched_total{topic=\"http://x/\\\"q\\\"\"} 3\n") !=
        std::string::npos);
  CHECK(text.find("topicbridge_table_changes_decoded_total{table=\"patient\"} 7\n") !=
        std::string::npos);
  CHECK(text.find("topicbridge_slot_lag_bytes 4096\n") != std::string::npos);
  CHECK(text.find("topicbridge_replication_connected 1\n") != std::string::npos);
  CHECK(text.find("topicbridge_replication_seconds_since_last_message -1\n") != std::string::npos);
  CHECK(text.find("topicbridge_process_resident_memory_bytes ") != std::string::npos);
  CHECK(text.find("topicbridge_process_resident_memory_bytes 0\n") == std::string::npos);
}

TEST_CASE("slot lag alarm rises at the threshold, clears below it, and is exported") {
  StatusRegistry registry;
  ReplicationGauges& r = registry.replication();
  r.slot_lag_alarm_threshold_bytes = 1000;
  CHECK(r.RecordSlotLag(999) == SlotLagAlarmChange::kNone);
  CHECK(RenderPrometheus(registry).find("topicbridge_slot_lag_alarm 0\n") != std::string::npos);
  CHECK(r.RecordSlotLag(1000) == SlotLagAlarmChange::kRaised);
  CHECK(r.RecordSlotLag(5000) == SlotLagAlarmChange::kNone);  // warned once per crossing
  const std::string text = RenderPrometheus(registry);
  CHECK(text.find("# TYPE topicbridge_slot_lag_alarm gauge\n") != std::string::npos);
  CHECK(text.find("topicbridge_slot_lag_alarm 1\n") != std::string::npos);
  CHECK(text.find("topicbridge_slot_lag_alarm_threshold_bytes 1000\n") != std::string::npos);
  CHECK(text.find("topicbridge_slot_lag_bytes 5000\n") != std::string::npos);
  CHECK(r.RecordSlotLag(10) == SlotLagAlarmChange::kCleared);
  CHECK(r.RecordSlotLag(10) == SlotLagAlarmChange::kNone);
  CHECK_FALSE(r.slot_lag_alarm.load());
}

TEST_CASE("a zero threshold never raises the slot lag alarm") {
  ReplicationGauges r;
  CHECK(r.RecordSlotLag(std::int64_t{1} << 40) == SlotLagAlarmChange::kNone);
  CHECK_FALSE(r.slot_lag_alarm.load());
}
