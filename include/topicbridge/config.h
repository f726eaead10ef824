// Config: the YAML configuration of DESIGN.md "Contracts", loaded with yaml-cpp.
// Topics and destinations are the Aidbox resources verbatim (YAML or JSON).
// Loading never throws for a single bad topic or destination: every problem is
// collected as a ConfigProblem naming the key path and what was expected.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace topicbridge {

// A problem found while loading: "destinations[0].parameter[1].valueString:
// expected a string".
struct ConfigProblem {
  std::string path;     // key path, e.g. "topics[0].trigger[0].fhirPathCriteria"
  std::string message;  // what is wrong and what to do
  std::string ToString() const { return path.empty() ? message : path + ": " + message; }
};

// One AidboxTopicDestination.parameter[] entry. Exactly one value[x] is set;
// `value_type` names it ("valueString", "valueInteger", "valueBoolean", ...).
struct Parameter {
  std::string name;
  std::string value_type;
  std::string text;          // valueString / valueUrl / valueCode / any string-like type
  std::int64_t integer = 0;  // valueInteger / valueUnsignedInt / valuePositiveInt
  bool boolean = false;      // valueBoolean
  std::string path;          // key path of this entry, for error messages
};

struct TriggerConfig {
  std::string resource;                            // e.g. "Patient"
  std::vector<std::string> supported_interaction;  // create | update | delete (empty: all)
  std::string fhir_path_criteria;                  // empty: always
  std::string path;
};

struct TopicConfig {
  std::string id;
  std::string url;
  std::string status;
  std::vector<TriggerConfig> triggers;
  std::string path;
};

struct DestinationConfig {
  std::string id;
  std::string kind;   // nats-core-best-effort | nats-jetstream-at-least-once | kafka-*
  std::string topic;  // the topic url this destination delivers
  std::string content = "full-resource";  // full-resource | id-only | empty
  bool include_entry_action = false;      // entry.extension with the action code
  bool include_version_id = false;        // fullUrl ends with /_history/<versionId>
  bool include_version_id_in_focus_reference = false;  // focus Type/id/_history/<versionId>
  std::vector<Parameter> parameters;
  std::string path;

  bool AtLeastOnce() const;
  // nullptr when absent.
  const Parameter* Find(const std::string& name) const;
};

struct PostgresConfig {
  std::string dsn = "host=127.0.0.1 port=5432 dbname=aidbox user=postgres";
  std::string slot = "topicbridge";
  std::string schema = "public";
  std::int64_t slot_lag_alarm_bytes = 1ll << 30;  // warn and raise the alarm metric above this
  std::int64_t slot_lag_poll_ms = 5000;
};

struct HttpConfig {
  std::string listen = "127.0.0.1:8765";
  std::string bearer_token;  // non-empty: required on every route but the probes
};

struct LogConfig {
  std::string level = "info";   // trace | debug | info | warn | error
  std::string format = "text";  // text | json
};

struct DeliveryConfig {
  std::size_t best_effort_queue = 10000;     // messages in flight per best-effort destination
  std::size_t at_least_once_window = 10000;  // unacknowledged messages per at-least-once one
  std::int64_t drain_timeout_ms = 10000;     // on SIGTERM, wait this long for acknowledgements
};

struct Config {
  PostgresConfig postgres;
  HttpConfig http;
  LogConfig log;
  DeliveryConfig delivery;
  std::string aidbox_base_url = "http://localhost:8080";
  // Aidbox custom resource types the file's topics may name besides the FHIR R4 ones.
  std::vector<std::string> custom_resource_types;
  // Also load AidboxSubscriptionTopic / AidboxTopicDestination rows from
  // Aidbox's tables and follow their changes live.
  bool topics_from_database = false;
  std::vector<TopicConfig> topics;
  std::vector<DestinationConfig> destinations;
};

struct LoadedConfig {
  Config config;
  std::vector<ConfigProblem> problems;  // empty: valid
};

// Reads and validates the file: YAML syntax (with line and column), keys,
// types, the resource types topics name (FHIR R4 or aidbox.custom_resource_types)
// and references between destinations and topics. Semantic checks that need
// other modules (FHIRPath, sink parameters) are done by the caller.
LoadedConfig LoadConfigFile(const std::string& file_path);
LoadedConfig LoadConfigText(const std::string& yaml_text);

// One row of Aidbox's `aidboxsubscriptiontopic` or `aidboxtopicdestination`
// table: `id` and the stored resource (Aidbox format: no id or resourceType,
// parameter values as `value: {string: ...}`). On success the result holds
// exactly one topic or destination; problems name "<table>/<id>".
LoadedConfig ParseStoredTopic(const std::string& id, const std::string& aidbox_json);
LoadedConfig ParseStoredDestination(const std::string& id, const std::string& aidbox_json);

}  // namespace topicbridge
