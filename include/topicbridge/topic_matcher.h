// TopicMatcher: finds the topics an event fires, by resource type, interaction
// and FHIRPath criteria compiled once at load. Each event's resources are
// parsed once and shared by every trigger. A criterion that fails to evaluate
// makes its trigger not match; the error is counted and reported, never thrown.
// Not thread-safe: one matcher per pipeline thread.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "topicbridge/config.h"
#include "topicbridge/fhirpath.h"
#include "topicbridge/resource_event.h"

namespace topicbridge {

struct CompiledTrigger {
  std::size_t topic = 0;      // index into TopicMatcher::topics()
  unsigned interactions = 0;  // bit per Interaction; all when the topic lists none
  std::optional<fhirpath::Expression> criteria;
  std::string criteria_text;
};

struct MatcherTopic {
  std::string url;
  std::string id;
  std::uint64_t fhirpath_errors = 0;
};

// Reported when a criterion fails to evaluate on an event.
struct CriteriaError {
  const MatcherTopic* topic;
  const std::string* expression;
  std::string message;
  bool first_for_topic;  // log it loudly once per topic, count the rest
};

class TopicMatcher {
 public:
  // Compiles every trigger. Problems (syntax errors with topic, expression and
  // position) are appended to *problems; a topic with any problem is left out.
  TopicMatcher(const std::vector<TopicConfig>& topics, std::vector<ConfigProblem>* problems);
  TopicMatcher(const TopicMatcher&) = delete;
  TopicMatcher& operator=(const TopicMatcher&) = delete;

  // Fills *matched with the indexes of the topics the event fires (each at
  // most once, in topic order). `on_error` receives criteria failures.
  // Returns false if the event's JSON could not be parsed (reason in *error).
  bool Match(const ResourceEvent& event, std::vector<std::size_t>* matched,
             const std::function<void(const CriteriaError&)>& on_error, std::string* error);

  const std::vector<MatcherTopic>& topics() const { return topics_; }
  // What resolve() in criteria asks; null: only contained resources resolve.
  // Not owned; must outlive Match calls.
  void set_resolver(fhirpath::Resolver* resolver) { resolver_ = resolver; }
  // Lower-case table name → resource type, for every type some trigger names.
  std::map<std::string, std::string> TableTypes() const;

 private:
  std::vector<MatcherTopic> topics_;
  std::unordered_map<std::string, std::vector<CompiledTrigger>> by_type_;
  simdjson::dom::parser current_parser_;
  simdjson::dom::parser previous_parser_;
  fhirpath::Evaluator evaluator_;
  fhirpath::Resolver* resolver_ = nullptr;
};

}  // namespace topicbridge
