#include <doctest/doctest.h>

#include "topicbridge/notification.h"

using namespace topicbridge;

namespace {
ResourceEvent Patient(Interaction interaction) {
  ResourceEvent e;
  e.resource_type = "Patient";
  e.id = "pt-1";
  e.interaction = interaction;
  if (interaction != Interaction::kDelete) e.current = R"({"resourceType":"Patient","id":"pt-1"})";
  return e;
}
NotificationTarget Target(std::string_view content = "full-resource") {
  return {"http://example.org/FHIR/R5/SubscriptionTopic/patient-topic", "basic", "foo", content,
          "http://localhost:8080/"};
}
}  // namespace

TEST_CASE("a create notification has the Aidbox shape byte for byte") {
  JsonWriter w;
  const auto& body =
      BuildNotification(Patient(Interaction::kCreate), Target(), 1, "2026-11-25T15:50:07.123Z", &w);
  CHECK(
      body ==
      R"({"topic":"foo","value":{"resourceType":"Bundle","type":"history",)"
      R"("timestamp":"2026-11-25T15:50:07.123Z","entry":[{"resource":{)"
      R"("resourceType":"AidboxSubscriptionStatus","status":"active","type":"event-notification",)"
      R"("notificationEvent":[{"eventNumber":1,"focus":{"reference":"Patient/pt-1"}}],)"
      R"("topic":"http://example.org/FHIR/R5/SubscriptionTopic/patient-topic",)"
      R"("topic-destination":{"reference":"AidboxTopicDestination/basic"}}},)"
      R"({"request":{"method":"POST","url":"/fhir/Patient"},)"
      R"("fullUrl":"http://localhost:8080/fhir/Patient/pt-1",)"
      R"("resource":{"resourceType":"Patient","id":"pt-1"}}]}})");
}

TEST_CASE("update and delete requests name the resource; delete carries no resource") {
  JsonWriter w;
  auto body = BuildNotification(Patient(Interaction::kUpdate), Target(), 2, "t", &w);
  CHECK(body.find(R"("request":{"method":"PUT","url":"/fhir/Patient/pt-1"})") != std::string::npos);
  body = BuildNotification(Patient(Interaction::kDelete), Target(), 3, "t", &w);
  CHECK(body.find(R"("request":{"method":"DELETE","url":"/fhir/Patient/pt-1"})") !=
        std::string::npos);
  CHECK(body.find(R"("resource":{"resourceType":"Patient")") == std::string::npos);
}

TEST_CASE("content modes: id-only drops the resource, empty drops the entry") {
  JsonWriter w;
  auto body = BuildNotification(Patient(Interaction::kCreate), Target("id-only"), 1, "t", &w);
  CHECK(body.find(R"("fullUrl")") != std::string::npos);
  CHECK(body.find(R"("resource":{"resourceType":"Patient")") == std::string::npos);
  body = BuildNotification(Patient(Interaction::kCreate), Target("empty"), 1, "t", &w);
  CHECK(body.find(R"("fullUrl")") == std::string::npos);
  CHECK(body.find(R"("focus":{"reference":"Patient/pt-1"})") != std::string::npos);
}

TEST_CASE("entry action and version ids on request") {
  JsonWriter w;
  auto event = Patient(Interaction::kUpdate);
  event.version_id = "42";
  auto target = Target();
  target.include_entry_action = true;
  target.include_version_id = true;
  target.include_version_id_in_focus_reference = true;
  const auto& body = BuildNotification(event, target, 7, "t", &w);
  CHECK(body.find(R"("focus":{"reference":"Patient/pt-1/_history/42"})") != std::string::npos);
  CHECK(body.find(R"("fullUrl":"http://localhost:8080/fhir/Patient/pt-1/_history/42")") !=
        std::string::npos);
  CHECK(body.find(R"({"extension":[{"url":")" + std::string(kEntryActionUrl) +
                  R"(","valueCode":"update"}],"request")") != std::string::npos);
}
