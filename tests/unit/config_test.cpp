#include "topicbridge/config.h"

#include <doctest/doctest.h>

#include <cstdlib>

using topicbridge::LoadConfigText;

namespace {
bool HasProblem(const topicbridge::LoadedConfig& loaded, const std::string& path,
                const std::string& fragment) {
  for (const auto& p : loaded.problems)
    if (p.path == path && p.message.find(fragment) != std::string::npos) return true;
  return false;
}
std::string Dump(const topicbridge::LoadedConfig& loaded) {
  std::string all;
  for (const auto& p : loaded.problems) all += p.ToString() + "\n";
  return all;
}
}  // namespace

TEST_CASE("the seed walkthrough resources load verbatim as JSON inside YAML") {
  const auto loaded = LoadConfigText(R"yaml(
postgres: {dsn: "host=127.0.0.1 port=5432 dbname=aidbox user=postgres", slot: topicbridge}
http: {listen: "127.0.0.1:8765"}
aidbox: {base_url: "http://localhost:8080"}
topics:
  - {"resourceType": "AidboxSubscriptionTopic",
     "url": "http://example.org/FHIR/R5/SubscriptionTopic/patient-topic",
     "status": "active",
     "trigger": [{"resource": "Patient", "fhirPathCriteria": "name.exists()"}]}
destinations:
  - {"resourceType": "AidboxTopicDestination", "id": "basic",
     "meta": {"profile": ["http://aidbox.app/StructureDefinition/aidboxtopicdestination-nats-core-best-effort"]},
     "kind": "nats-core-best-effort",
     "topic": "http://example.org/FHIR/R5/SubscriptionTopic/patient-topic",
     "parameter": [{"name": "url", "valueString": "nats://localhost:4222"},
                   {"name": "subject", "valueString": "foo"}]}
)yaml");
  INFO(Dump(loaded));
  REQUIRE(loaded.problems.empty());
  const auto& c = loaded.config;
  REQUIRE(c.topics.size() == 1);
  CHECK(c.topics[0].triggers[0].resource == "Patient");
  CHECK(c.topics[0].triggers[0].fhir_path_criteria == "name.exists()");
  REQUIRE(c.destinations.size() == 1);
  CHECK(c.destinations[0].id == "basic");
  CHECK_FALSE(c.destinations[0].AtLeastOnce());
  CHECK(c.destinations[0].content == "full-resource");
  REQUIRE(c.destinations[0].Find("subject") != nullptr);
  CHECK(c.destinations[0].Find("subject")->text == "foo");
  CHECK(c.postgres.slot == "topicbridge");
}

TEST_CASE("typed parameters keep their value type") {
  const auto loaded = LoadConfigText(R"yaml(
topics: [{url: t, trigger: [{resource: Patient}]}]
destinations:
  - id: k
    kind: kafka-at-least-once
    topic: t
    parameter:
      - {name: batchSize, valueInteger: 16384}
      - {name: keyByResourceId, valueBoolean: true}
)yaml");
  INFO(Dump(loaded));
  REQUIRE(loaded.problems.empty());
  const auto& d = loaded.config.destinations[0];
  CHECK(d.AtLeastOnce());
  CHECK(d.Find("batchSize")->integer == 16384);
  CHECK(d.Find("batchSize")->value_type == "valueInteger");
  CHECK(d.Find("keyByResourceId")->boolean);
}

TEST_CASE("malformed YAML reports line and column") {
  const auto loaded = LoadConfigText("topics:\n  - {url: x\n");
  REQUIRE(loaded.problems.size() == 1);
  CHECK(loaded.problems[0].message.find("malformed YAML at line") != std::string::npos);
}

TEST_CASE("a mapping or sequence used as a key is a problem, not an exception") {
  const auto loaded = LoadConfigText("aidbox:\n  [a, b]: 1\n");
  REQUIRE(loaded.problems.size() == 1);
  CHECK(loaded.problems[0].message.find("line 2") != std::string::npos);
}

TEST_CASE("every problem names its key path") {
  const auto loaded = LoadConfigText(R"yaml(
postgre: {}
topics:
  - url: t
    trigger: [{resource: Patient, supportedInteraction: [create, upsert]}]
destinations:
  - id: d
    kind: nats-core-best-effort
    topic: missing-topic
    content: everything
    parameter:
      - {name: batchSize, valueInteger: lots}
      - {valueString: x}
)yaml");
  INFO(Dump(loaded));
  CHECK(HasProblem(loaded, "postgre", "unknown key"));
  CHECK(HasProblem(loaded, "topics[0].trigger[0].supportedInteraction[1]", "unknown interaction"));
  CHECK(HasProblem(loaded, "destinations[0].topic", "no topic has url missing-topic"));
  CHECK(HasProblem(loaded, "destinations[0].content", "unknown content"));
  CHECK(HasProblem(loaded, "destinations[0].parameter[0].valueInteger",
                   "parameter \"batchSize\" expects an integer, got \"lots\""));
  CHECK(HasProblem(loaded, "destinations[0].parameter[1]", "missing required key 'name'"));
}

TEST_CASE("required keys are named when missing") {
  const auto loaded = LoadConfigText("topics: [{trigger: []}]\ndestinations: [{kind: x}]\n");
  CHECK(HasProblem(loaded, "topics[0]", "missing required key 'url'"));
  CHECK(HasProblem(loaded, "topics[0].trigger", "non-empty list"));
  CHECK(HasProblem(loaded, "destinations[0]", "missing required key 'id'"));
  CHECK(HasProblem(loaded, "destinations[0]", "missing required key 'topic'"));
}

TEST_CASE("environment variables are interpolated, with defaults") {
  setenv("TB_TEST_DSN", "host=db", 1);
  unsetenv("TB_TEST_UNSET");
  const auto loaded = LoadConfigText(
      "postgres: {dsn: '${TB_TEST_DSN} port=1', slot: '${TB_TEST_UNSET:-fallback}'}\n"
      "http: {listen: '${TB_TEST_UNSET}'}\n");
  CHECK(loaded.config.postgres.dsn == "host=db port=1");
  CHECK(loaded.config.postgres.slot == "fallback");
  CHECK(HasProblem(loaded, "http.listen", "TB_TEST_UNSET is not set"));
}

TEST_CASE("destination notification options are booleans") {
  const auto loaded = LoadConfigText(R"yaml(
topics: [{url: t, trigger: [{resource: Patient}]}]
destinations:
  - {id: a, kind: nats-core-best-effort, topic: t, content: id-only, includeEntryAction: true,
     includeVersionId: true, includeVersionIdInFocusReference: false}
  - {id: b, kind: nats-core-best-effort, topic: t, includeVersionId: maybe}
)yaml");
  INFO(Dump(loaded));
  CHECK(loaded.problems.size() == 1);  // only b's
  const auto& a = loaded.config.destinations[0];
  CHECK(a.content == "id-only");
  CHECK(a.include_entry_action);
  CHECK(a.include_version_id);
  CHECK_FALSE(a.include_version_id_in_focus_reference);
  CHECK(HasProblem(loaded, "destinations[1].includeVersionId", "expected true or false"));
}

TEST_CASE("a destination stored in Aidbox format loads like the POSTed one") {
  const auto loaded = topicbridge::ParseStoredDestination(
      "basic",
      R"({"kind": "nats-core-best-effort", "topic": "http://t", "meta": {"profile": ["p"]},
          "parameter": [{"name": "url", "value": {"string": "nats://127.0.0.1:4222"}},
                        {"name": "batchSize", "value": {"integer": 10}},
                        {"name": "keyByResourceId", "value": {"boolean": true}}]})");
  INFO(Dump(loaded));
  REQUIRE(loaded.problems.empty());
  REQUIRE(loaded.config.destinations.size() == 1);
  const auto& d = loaded.config.destinations[0];
  CHECK(d.id == "basic");
  CHECK(d.Find("url")->text == "nats://127.0.0.1:4222");
  CHECK(d.Find("url")->value_type == "valueString");
  CHECK(d.Find("batchSize")->integer == 10);
  CHECK(d.Find("keyByResourceId")->boolean);
}

TEST_CASE("a destination stored in Aidbox never reads topicbridge's environment") {
  setenv("TB_CONFIG_TEST_SECRET", "env-secret-value", 1);
  const auto loaded = topicbridge::ParseStoredDestination(
      "leak",
      R"({"kind": "nats-core-best-effort", "topic": "http://t",
          "parameter": [{"name": "url", "value": {"string": "nats://127.0.0.1:4222"}},
                        {"name": "subject", "value": {"string": "s"}},
                        {"name": "username", "value": {"string": "${TB_CONFIG_TEST_SECRET}"}}]})");
  unsetenv("TB_CONFIG_TEST_SECRET");
  INFO(Dump(loaded));
  REQUIRE(loaded.problems.empty());
  CHECK(loaded.config.destinations.at(0).Find("username")->text == "${TB_CONFIG_TEST_SECRET}");
}

TEST_CASE("a stored topic with problems names its table and id") {
  const auto loaded = topicbridge::ParseStoredTopic("t1", R"({"status": "active"})");
  CHECK(HasProblem(loaded, "aidboxsubscriptiontopic/t1", "missing required key 'url'"));
  const auto bad = topicbridge::ParseStoredTopic("t2", "{not json");
  CHECK(HasProblem(bad, "aidboxsubscriptiontopic/t2", "not valid JSON"));
}

TEST_CASE("a topic naming an unknown resource type is a problem that suggests the likely one") {
  const auto loaded = LoadConfigText(R"yaml(
topics:
  - {url: a, trigger: [{resource: Patinet}, {resource: observation}]}
  - {url: b, trigger: [{resource: Frobnicator}]}
  - {url: c, trigger: [{resource: Patient}, {resource: DomainResource}]}
)yaml");
  INFO(Dump(loaded));
  CHECK(loaded.problems.size() == 4);
  CHECK(HasProblem(loaded, "topics[0].trigger[0].resource",
                   "unknown resource type \"Patinet\" (did you mean Patient?)"));
  CHECK(HasProblem(loaded, "topics[0].trigger[1].resource", "(did you mean Observation?)"));
  CHECK(HasProblem(loaded, "topics[1].trigger[0].resource",
                   "unknown resource type \"Frobnicator\": name a FHIR R4 resource type, or list "
                   "an Aidbox custom resource type under aidbox.custom_resource_types"));
  CHECK(HasProblem(loaded, "topics[2].trigger[1].resource", "\"DomainResource\""));
}

TEST_CASE("Aidbox custom resource types are accepted once listed") {
  const auto loaded = LoadConfigText(R"yaml(
aidbox: {custom_resource_types: [Frobnicator]}
topics: [{url: b, trigger: [{resource: Frobnicator}, {resource: Patient}]}]
)yaml");
  INFO(Dump(loaded));
  CHECK(loaded.problems.empty());
  CHECK(loaded.config.custom_resource_types == std::vector<std::string>{"Frobnicator"});
  const auto bad = LoadConfigText("aidbox: {custom_resource_types: Frobnicator}\n");
  CHECK(HasProblem(bad, "aidbox.custom_resource_types",
                   "expected a list of resource type names, got \"Frobnicator\""));
}

TEST_CASE("an ill-typed value names the parameter and what it got, but never a secret") {
  const auto loaded = LoadConfigText(R"yaml(
topics: [{url: t, trigger: [{resource: Patient}]}]
destinations:
  - id: k
    kind: kafka-best-effort
    topic: t
    parameter:
      - {name: kafkaTopic, valueString: k}
      - {name: bootstrapServers, valueString: "127.0.0.1:9092"}
      - {name: batchSize, valueInteger: abc}
      - {valueBoolean: maybe, name: keyByResourceId}
      - {name: saslJaasConfig, valueInteger: hunter2}
)yaml");
  INFO(Dump(loaded));
  CHECK(loaded.problems.size() == 3);
  CHECK(HasProblem(loaded, "destinations[0].parameter[2].valueInteger",
                   "parameter \"batchSize\" expects an integer, got \"abc\" (line 10, column"));
  CHECK(HasProblem(loaded, "destinations[0].parameter[3].valueBoolean",
                   "parameter \"keyByResourceId\" expects true or false, got \"maybe\""));
  CHECK(HasProblem(loaded, "destinations[0].parameter[4].valueInteger",
                   "parameter \"saslJaasConfig\" expects an integer, got another value"));
  CHECK(Dump(loaded).find("hunter2") == std::string::npos);
}

TEST_CASE("an ill-typed setting says what it got") {
  const auto loaded = LoadConfigText("delivery: {drain_timeout_ms: soon}\nhttp: {listen: [a]}\n");
  INFO(Dump(loaded));
  CHECK(HasProblem(loaded, "delivery.drain_timeout_ms", "expected an integer, got \"soon\""));
  CHECK(HasProblem(loaded, "http.listen", "expected a string, got a list"));
}
