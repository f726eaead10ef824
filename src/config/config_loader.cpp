// Loads the YAML configuration into Config, collecting every problem with its
// key path instead of stopping at the first: `topicbridge check` prints them all.
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>

#include "topicbridge/config.h"
#include "topicbridge/fhir_resource_types.h"

namespace topicbridge {

bool DestinationConfig::AtLeastOnce() const { return kind.ends_with("-at-least-once"); }

const Parameter* DestinationConfig::Find(const std::string& name) const {
  for (const auto& p : parameters)
    if (p.name == name) return &p;
  return nullptr;
}

namespace {

std::string Position(const YAML::Node& node) {
  const auto mark = node.Mark();
  if (mark.is_null()) return "";
  return " (line " + std::to_string(mark.line + 1) + ", column " + std::to_string(mark.column + 1) +
         ")";
}

// Replaces ${NAME} and ${NAME:-default} with the environment's value, so that
// secrets and per-host addresses stay out of the file.
std::string Interpolate(const std::string& text, const std::string& path,
                        std::vector<ConfigProblem>* problems) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text.compare(i, 2, "${") != 0) {
      out += text[i++];
      continue;
    }
    const std::size_t end = text.find('}', i + 2);
    if (end == std::string::npos) {
      problems->push_back({path, "unterminated ${...} reference: close it with '}'"});
      return text;
    }
    std::string name = text.substr(i + 2, end - i - 2);
    std::optional<std::string> fallback;
    if (const auto sep = name.find(":-"); sep != std::string::npos) {
      fallback = name.substr(sep + 2);
      name = name.substr(0, sep);
    }
    if (const char* value = std::getenv(name.c_str()); value != nullptr && *value != '\0') {
      out += value;
    } else if (fallback) {
      out += *fallback;
    } else {
      problems->push_back({path, "environment variable " + name +
                                     " is not set: export it or write ${" + name + ":-default}"});
    }
    i = end + 1;
  }
  return out;
}

// A parameter whose value may be a secret: its value is never echoed in a message.
bool SecretName(std::string name) {
  for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* part : {"password", "secret", "token", "jaas", "seed", "credential", "keystore"})
    if (name.find(part) != std::string::npos) return true;
  return false;
}

// What an ill-typed value was: ", got \"abc\"", ", got a list"; a secret's text is not shown.
std::string Got(const YAML::Node& node, bool secret = false) {
  if (node.IsSequence()) return ", got a list";
  if (node.IsMap()) return ", got a mapping";
  if (node.IsScalar()) return secret ? ", got another value" : ", got \"" + node.Scalar() + "\"";
  return ", got nothing";
}

// "expected an integer" or, for a named thing, "parameter \"batchSize\" expects an integer".
std::string Expected(const std::string& subject, const char* what) {
  return (subject.empty() ? std::string("expected ") : subject + " expects ") + what;
}

class Reader {
 public:
  // `environment`: expand ${NAME} from the environment (the config file). Never for
  // resources stored in Aidbox: whoever writes one must not read our environment.
  explicit Reader(std::vector<ConfigProblem>* problems, bool environment = true)
      : problems_(problems), environment_(environment) {}

  void Problem(const std::string& path, const std::string& message) {
    problems_->push_back({path, message});
  }

  bool ExpectMap(const YAML::Node& node, const std::string& path) {
    if (node.IsMap()) return true;
    Problem(path, "expected a mapping" + Position(node));
    return false;
  }

  // Reports every key of `node` that is not in `known`.
  void CheckKeys(const YAML::Node& node, const std::string& path,
                 const std::set<std::string>& known) {
    for (const auto& item : node) {
      const auto key = item.first.as<std::string>();
      if (known.count(key) == 0) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        Problem(Join(path, key),
                "unknown key" + Position(item.first) + "; expected one of: " + list);
      }
    }
  }

  static std::string Join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }

  std::optional<std::string> String(const YAML::Node& node, const std::string& path,
                                    const std::string& subject = "") {
    if (!node.IsScalar()) {
      Problem(path, Expected(subject, "a string") + Got(node) + Position(node));
      return std::nullopt;
    }
    return Text(node, path);
  }

  void OptionalString(const YAML::Node& map, const std::string& path, const char* key,
                      std::string* out) {
    if (const auto node = map[key]; node) {
      if (auto s = String(node, Join(path, key))) *out = *s;
    }
  }

  // `subject` names what the value is for in the message (e.g. parameter "batchSize").
  std::optional<std::int64_t> Integer(const YAML::Node& node, const std::string& path,
                                      const std::string& subject = "", bool secret = false) {
    std::int64_t value = 0;
    if (node.IsScalar()) {
      const std::string text = Text(node, path);
      std::size_t used = 0;
      try {
        value = std::stoll(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == text.size() && used > 0) return value;
    }
    Problem(path, Expected(subject, "an integer") + Got(node, secret) + Position(node));
    return std::nullopt;
  }

  std::optional<bool> Boolean(const YAML::Node& node, const std::string& path,
                              const std::string& subject = "", bool secret = false) {
    if (node.IsScalar()) {
      const std::string text = Text(node, path);
      if (text == "true") return true;
      if (text == "false") return false;
    }
    Problem(path, Expected(subject, "true or false") + Got(node, secret) + Position(node));
    return std::nullopt;
  }

 private:
  std::string Text(const YAML::Node& node, const std::string& path) {
    return environment_ ? Interpolate(node.Scalar(), path, problems_) : node.Scalar();
  }

  std::vector<ConfigProblem>* problems_;
  bool environment_;
};

// FHIR resource keys that Aidbox accepts on these resources and that
// topicbridge has no use for; they are allowed so that a POSTed resource loads
// unchanged.
const std::set<std::string> kTopicKeys = {
    "resourceType", "id",      "meta",       "url",          "status", "trigger",
    "name",         "title",   "version",    "description",  "date",   "publisher",
    "contact",      "purpose", "identifier", "experimental", "text",   "extension"};
const std::set<std::string> kTriggerKeys = {"resource", "supportedInteraction", "fhirPathCriteria",
                                            "description", "queryCriteria"};
const std::set<std::string> kDestinationKeys = {"resourceType",
                                                "id",
                                                "meta",
                                                "kind",
                                                "topic",
                                                "content",
                                                "parameter",
                                                "status",
                                                "description",
                                                "name",
                                                "extension",
                                                "text",
                                                "includeEntryAction",
                                                "includeVersionId",
                                                "includeVersionIdInFocusReference"};
const std::set<std::string> kInteractions = {"create", "update", "delete"};
const std::set<std::string> kContents = {"full-resource", "id-only", "empty"};

TriggerConfig ReadTrigger(Reader& r, const YAML::Node& node, const std::string& path) {
  TriggerConfig trigger;
  trigger.path = path;
  if (!r.ExpectMap(node, path)) return trigger;
  r.CheckKeys(node, path, kTriggerKeys);
  if (const auto res = node["resource"]; res) {
    if (auto s = r.String(res, path + ".resource")) trigger.resource = *s;
  } else {
    r.Problem(path, "missing required key 'resource' (a FHIR resource type, e.g. Patient)");
  }
  if (const auto list = node["supportedInteraction"]; list) {
    if (!list.IsSequence()) {
      r.Problem(path + ".supportedInteraction",
                "expected a list of create | update | delete" + Position(list));
    } else {
      for (std::size_t i = 0; i < list.size(); ++i) {
        const auto item_path = path + ".supportedInteraction[" + std::to_string(i) + "]";
        if (auto s = r.String(list[i], item_path)) {
          if (kInteractions.count(*s) == 0)
            r.Problem(item_path,
                      "unknown interaction '" + *s + "': expected create, update or delete");
          else
            trigger.supported_interaction.push_back(*s);
        }
      }
    }
  }
  r.OptionalString(node, path, "fhirPathCriteria", &trigger.fhir_path_criteria);
  return trigger;
}

TopicConfig ReadTopic(Reader& r, const YAML::Node& node, const std::string& path) {
  TopicConfig topic;
  topic.path = path;
  if (!r.ExpectMap(node, path)) return topic;
  r.CheckKeys(node, path, kTopicKeys);
  if (const auto rt = node["resourceType"]; rt) {
    auto s = r.String(rt, path + ".resourceType");
    if (s && *s != "AidboxSubscriptionTopic")
      r.Problem(path + ".resourceType", "expected AidboxSubscriptionTopic, got " + *s);
  }
  r.OptionalString(node, path, "id", &topic.id);
  r.OptionalString(node, path, "status", &topic.status);
  if (const auto url = node["url"]; url) {
    if (auto s = r.String(url, path + ".url")) topic.url = *s;
  } else {
    r.Problem(path, "missing required key 'url' (destinations refer to the topic by it)");
  }
  const auto triggers = node["trigger"];
  if (!triggers || !triggers.IsSequence() || triggers.size() == 0) {
    r.Problem(path + ".trigger", "expected a non-empty list of triggers");
    return topic;
  }
  for (std::size_t i = 0; i < triggers.size(); ++i)
    topic.triggers.push_back(
        ReadTrigger(r, triggers[i], path + ".trigger[" + std::to_string(i) + "]"));
  return topic;
}

Parameter ReadParameter(Reader& r, const YAML::Node& node, const std::string& path) {
  Parameter p;
  p.path = path;
  if (!r.ExpectMap(node, path)) return p;
  if (const auto name = node["name"]; name) {
    if (auto s = r.String(name, path + ".name")) p.name = *s;
  }
  // Value problems name the parameter: the path alone says only "parameter[2]".
  const std::string subject = p.name.empty() ? "" : "parameter \"" + p.name + "\"";
  const bool secret = SecretName(p.name);
  int values = 0;
  for (const auto& item : node) {
    const auto key = item.first.as<std::string>();
    const auto key_path = path + "." + key;
    if (key == "name") {
      continue;
    } else if (key == "valueInteger" || key == "valueUnsignedInt" || key == "valuePositiveInt") {
      ++values;
      p.value_type = key;
      if (auto v = r.Integer(item.second, key_path, subject, secret)) p.integer = *v;
    } else if (key == "valueBoolean") {
      ++values;
      p.value_type = key;
      if (auto v = r.Boolean(item.second, key_path, subject, secret)) p.boolean = *v;
    } else if (key.starts_with("value")) {
      ++values;
      p.value_type = key;
      if (auto s = r.String(item.second, key_path, subject)) p.text = *s;
    } else {
      r.Problem(key_path,
                "unknown key" + Position(item.first) + "; a parameter has 'name' and one value[x]");
    }
  }
  if (p.name.empty()) r.Problem(path, "missing required key 'name'");
  if (values != 1)
    r.Problem(path, "expected exactly one value[x] (valueString, valueInteger, valueBoolean, ...)");
  return p;
}

DestinationConfig ReadDestination(Reader& r, const YAML::Node& node, const std::string& path) {
  DestinationConfig d;
  d.path = path;
  if (!r.ExpectMap(node, path)) return d;
  r.CheckKeys(node, path, kDestinationKeys);
  if (const auto rt = node["resourceType"]; rt) {
    auto s = r.String(rt, path + ".resourceType");
    if (s && *s != "AidboxTopicDestination")
      r.Problem(path + ".resourceType", "expected AidboxTopicDestination, got " + *s);
  }
  const std::pair<const char*, std::string*> required[] = {
      {"id", &d.id}, {"kind", &d.kind}, {"topic", &d.topic}};
  for (const auto& [key, out] : required) {
    const auto value = node[key];
    if (!value) {
      r.Problem(path, std::string("missing required key '") + key + "'");
      continue;
    }
    if (auto s = r.String(value, path + "." + key)) *out = *s;
  }
  r.OptionalString(node, path, "content", &d.content);
  const std::pair<const char*, bool*> flags[] = {
      {"includeEntryAction", &d.include_entry_action},
      {"includeVersionId", &d.include_version_id},
      {"includeVersionIdInFocusReference", &d.include_version_id_in_focus_reference}};
  for (const auto& [key, out] : flags) {
    if (const auto flag = node[key]; flag) {
      if (auto v = r.Boolean(flag, path + "." + key)) *out = *v;
    }
  }
  if (kContents.count(d.content) == 0)
    r.Problem(path + ".content",
              "unknown content '" + d.content + "': expected full-resource, id-only or empty");
  if (const auto params = node["parameter"]; params) {
    if (!params.IsSequence()) {
      r.Problem(path + ".parameter", "expected a list of {name, value[x]}" + Position(params));
    } else {
      for (std::size_t i = 0; i < params.size(); ++i)
        d.parameters.push_back(
            ReadParameter(r, params[i], path + ".parameter[" + std::to_string(i) + "]"));
    }
  }
  return d;
}

void ReadSections(Reader& r, const YAML::Node& root, Config* c) {
  r.CheckKeys(root, "",
              {"postgres", "http", "aidbox", "log", "delivery", "topics", "destinations"});
  if (const auto pg = root["postgres"]; pg && r.ExpectMap(pg, "postgres")) {
    r.CheckKeys(pg, "postgres",
                {"dsn", "slot", "schema", "slot_lag_alarm_bytes", "slot_lag_poll_ms"});
    for (const auto& [key, out] :
         {std::pair{"slot_lag_alarm_bytes", &c->postgres.slot_lag_alarm_bytes},
          std::pair{"slot_lag_poll_ms", &c->postgres.slot_lag_poll_ms}}) {
      if (const auto node = pg[key]; node) {
        if (auto v = r.Integer(node, std::string("postgres.") + key)) *out = *v;
      }
    }
    r.OptionalString(pg, "postgres", "dsn", &c->postgres.dsn);
    r.OptionalString(pg, "postgres", "slot", &c->postgres.slot);
    r.OptionalString(pg, "postgres", "schema", &c->postgres.schema);
  }
  if (const auto http = root["http"]; http && r.ExpectMap(http, "http")) {
    r.CheckKeys(http, "http", {"listen", "bearer_token"});
    r.OptionalString(http, "http", "listen", &c->http.listen);
    r.OptionalString(http, "http", "bearer_token", &c->http.bearer_token);
  }
  if (const auto aidbox = root["aidbox"]; aidbox && r.ExpectMap(aidbox, "aidbox")) {
    r.CheckKeys(aidbox, "aidbox", {"base_url", "topics_from_database", "custom_resource_types"});
    r.OptionalString(aidbox, "aidbox", "base_url", &c->aidbox_base_url);
    if (const auto types = aidbox["custom_resource_types"]; types && !types.IsNull()) {
      if (!types.IsSequence()) {
        r.Problem("aidbox.custom_resource_types",
                  "expected a list of resource type names" + Got(types) + Position(types));
      } else {
        for (std::size_t i = 0; i < types.size(); ++i) {
          const auto path = "aidbox.custom_resource_types[" + std::to_string(i) + "]";
          if (auto s = r.String(types[i], path)) c->custom_resource_types.push_back(*s);
        }
      }
    }
    if (const auto flag = aidbox["topics_from_database"]; flag) {
      if (auto v = r.Boolean(flag, "aidbox.topics_from_database")) c->topics_from_database = *v;
    }
  }
  if (const auto log = root["log"]; log && r.ExpectMap(log, "log")) {
    r.CheckKeys(log, "log", {"level", "format"});
    r.OptionalString(log, "log", "level", &c->log.level);
    r.OptionalString(log, "log", "format", &c->log.format);
    const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error"};
    if (levels.count(c->log.level) == 0)
      r.Problem("log.level", "expected trace, debug, info, warn or error");
    if (c->log.format != "text" && c->log.format != "json")
      r.Problem("log.format", "expected text or json");
  }
  if (const auto delivery = root["delivery"]; delivery && r.ExpectMap(delivery, "delivery")) {
    r.CheckKeys(delivery, "delivery",
                {"best_effort_queue", "at_least_once_window", "drain_timeout_ms"});
    const auto positive = [&](const char* key) -> std::optional<std::int64_t> {
      const auto node = delivery[key];
      if (!node) return std::nullopt;
      const std::string path = std::string("delivery.") + key;
      auto v = r.Integer(node, path);
      if (v && *v <= 0) {
        r.Problem(path, "expected a positive integer");
        return std::nullopt;
      }
      return v;
    };
    if (auto v = positive("best_effort_queue")) c->delivery.best_effort_queue = *v;
    if (auto v = positive("at_least_once_window")) c->delivery.at_least_once_window = *v;
    if (auto v = positive("drain_timeout_ms")) c->delivery.drain_timeout_ms = *v;
  }
  for (const char* section : {"topics", "destinations"}) {
    const auto list = root[section];
    if (!list || list.IsNull()) continue;
    if (!list.IsSequence()) {
      r.Problem(section, "expected a list" + Position(list));
      continue;
    }
    for (std::size_t i = 0; i < list.size(); ++i) {
      const auto path = std::string(section) + "[" + std::to_string(i) + "]";
      if (section[0] == 't')
        c->topics.push_back(ReadTopic(r, list[i], path));
      else
        c->destinations.push_back(ReadDestination(r, list[i], path));
    }
  }
}

// Only the file's topics: Aidbox validated the ones it stores, and knows its custom types.
void CheckResourceTypes(Reader& r, const Config& c) {
  const std::set<std::string> custom(c.custom_resource_types.begin(),
                                     c.custom_resource_types.end());
  for (const auto& topic : c.topics) {
    for (const auto& trigger : topic.triggers) {
      const std::string& type = trigger.resource;
      if (type.empty() || fhirpath::IsResourceType(type) || custom.count(type) != 0) continue;
      const std::string_view similar = fhirpath::SimilarResourceType(type);
      r.Problem(trigger.path + ".resource",
                "unknown resource type \"" + type + "\"" +
                    (similar.empty() ? "" : " (did you mean " + std::string(similar) + "?)") +
                    ": name a FHIR R4 resource type, or list an Aidbox custom resource type "
                    "under aidbox.custom_resource_types");
    }
  }
}

void CheckReferences(Reader& r, const Config& c) {
  CheckResourceTypes(r, c);
  std::set<std::string> urls;
  for (const auto& t : c.topics)
    if (!t.url.empty() && !urls.insert(t.url).second)
      r.Problem(t.path + ".url", "duplicate topic url " + t.url);
  std::set<std::string> ids;
  for (const auto& d : c.destinations) {
    if (!d.id.empty() && !ids.insert(d.id).second)
      r.Problem(d.path + ".id", "duplicate destination id " + d.id);
    if (!d.topic.empty() && urls.count(d.topic) == 0)
      r.Problem(d.path + ".topic", "no topic has url " + d.topic +
                                       ": add an AidboxSubscriptionTopic with that url to topics");
  }
}

}  // namespace

LoadedConfig LoadConfigText(const std::string& yaml_text) {
  LoadedConfig loaded;
  Reader r(&loaded.problems);
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::ParserException& e) {
    loaded.problems.push_back({"", "malformed YAML at line " + std::to_string(e.mark.line + 1) +
                                       ", column " + std::to_string(e.mark.column + 1) + ": " +
                                       e.msg});
    return loaded;
  }
  if (root.IsNull()) return loaded;  // an empty file: every default
  if (!r.ExpectMap(root, "(top level)")) return loaded;
  try {
    ReadSections(r, root, &loaded.config);
    CheckReferences(r, loaded.config);
  } catch (const YAML::Exception& e) {  // e.g. a mapping or sequence used as a key
    loaded.problems.push_back({"", "unexpected YAML at line " + std::to_string(e.mark.line + 1) +
                                       ", column " + std::to_string(e.mark.column + 1) + ": " +
                                       e.msg});
  }
  return loaded;
}

LoadedConfig LoadConfigFile(const std::string& file_path) {
  std::ifstream in(file_path);
  if (!in) {
    LoadedConfig loaded;
    loaded.problems.push_back(
        {"", "cannot read config file " + file_path + ": check the path given with -c"});
    return loaded;
  }
  std::stringstream text;
  text << in.rdbuf();
  return LoadConfigText(text.str());
}

namespace {

// Aidbox stores a choice as `value: {string: "x"}`; the loader reads FHIR's
// `valueString: "x"`.
void ParametersToFhir(YAML::Node resource) {
  YAML::Node parameters = resource["parameter"];
  if (!parameters || !parameters.IsSequence()) return;
  for (YAML::Node parameter : parameters) {
    if (!parameter.IsMap()) continue;
    const YAML::Node value = parameter["value"];
    if (!value || !value.IsMap() || value.size() != 1) continue;
    const auto type = value.begin()->first.as<std::string>();
    if (type.empty()) continue;
    std::string key = "value" + type;
    key[5] = static_cast<char>(std::toupper(static_cast<unsigned char>(key[5])));
    parameter[key] = YAML::Clone(value.begin()->second);
    parameter.remove("value");
  }
}

LoadedConfig ParseStored(const std::string& table, const std::string& id,
                         const std::string& aidbox_json, bool destination) {
  LoadedConfig loaded;
  Reader r(&loaded.problems, /*environment=*/false);
  const std::string path = table + "/" + id;
  YAML::Node node;
  try {
    node = YAML::Load(aidbox_json);
  } catch (const YAML::Exception& e) {
    r.Problem(path, std::string("stored resource is not valid JSON: ") + e.what());
    return loaded;
  }
  if (!r.ExpectMap(node, path)) return loaded;
  node["id"] = id;
  if (destination) {
    ParametersToFhir(node);
    loaded.config.destinations.push_back(ReadDestination(r, node, path));
  } else {
    loaded.config.topics.push_back(ReadTopic(r, node, path));
  }
  return loaded;
}

}  // namespace

LoadedConfig ParseStoredTopic(const std::string& id, const std::string& aidbox_json) {
  return ParseStored("aidboxsubscriptiontopic", id, aidbox_json, false);
}

LoadedConfig ParseStoredDestination(const std::string& id, const std::string& aidbox_json) {
  return ParseStored("aidboxtopicdestination", id, aidbox_json, true);
}

}  // namespace topicbridge
