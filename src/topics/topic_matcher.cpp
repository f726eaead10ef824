#include "topicbridge/topic_matcher.h"

#include <algorithm>
#include <cctype>

namespace topicbridge {

namespace {

unsigned Bit(Interaction interaction) { return 1u << static_cast<unsigned>(interaction); }

unsigned InteractionMask(const std::vector<std::string>& names) {
  if (names.empty())
    return Bit(Interaction::kCreate) | Bit(Interaction::kUpdate) | Bit(Interaction::kDelete);
  unsigned mask = 0;
  for (const auto& n : names) {
    if (n == "create") mask |= Bit(Interaction::kCreate);
    if (n == "update") mask |= Bit(Interaction::kUpdate);
    if (n == "delete") mask |= Bit(Interaction::kDelete);
  }
  return mask;
}

}  // namespace

TopicMatcher::TopicMatcher(const std::vector<TopicConfig>& topics,
                           std::vector<ConfigProblem>* problems) {
  for (const auto& topic : topics) {
    std::vector<std::pair<std::string, CompiledTrigger>> compiled;
    bool ok = true;
    for (const auto& trigger : topic.triggers) {
      CompiledTrigger t;
      t.topic = topics_.size();
      t.interactions = InteractionMask(trigger.supported_interaction);
      t.criteria_text = trigger.fhir_path_criteria;
      if (!trigger.fhir_path_criteria.empty()) {
        auto result = fhirpath::Expression::Compile(trigger.fhir_path_criteria);
        if (auto* syntax = std::get_if<fhirpath::SyntaxError>(&result)) {
          problems->push_back({trigger.path + ".fhirPathCriteria",
                               "invalid FHIRPath in topic " + topic.url + ": '" +
                                   trigger.fhir_path_criteria + "' at column " +
                                   std::to_string(syntax->column) + ": " + syntax->message});
          ok = false;
          continue;
        }
        t.criteria = std::get<fhirpath::Expression>(std::move(result));
      }
      compiled.emplace_back(trigger.resource, std::move(t));
    }
    if (!ok) continue;
    topics_.push_back({topic.url, topic.id, 0});
    for (auto& [type, trigger] : compiled) by_type_[type].push_back(std::move(trigger));
  }
}

std::map<std::string, std::string> TopicMatcher::TableTypes() const {
  std::map<std::string, std::string> tables;
  for (const auto& [type, triggers] : by_type_) {
    std::string table = type;
    std::transform(table.begin(), table.end(), table.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    tables[table] = type;
  }
  return tables;
}

bool TopicMatcher::Match(const ResourceEvent& event, std::vector<std::size_t>* matched,
                         const std::function<void(const CriteriaError&)>& on_error,
                         std::string* error) {
  matched->clear();
  const auto found = by_type_.find(event.resource_type);
  if (found == by_type_.end()) return true;
  const unsigned bit = Bit(event.interaction);

  // Parse lazily: most events of a type with only unconditional triggers need no DOM.
  bool parsed = false;
  fhirpath::Context context;
  context.resolver = resolver_;
  for (const auto& trigger : found->second) {
    if ((trigger.interactions & bit) == 0) continue;
    if (std::find(matched->begin(), matched->end(), trigger.topic) != matched->end()) continue;
    if (trigger.criteria) {
      if (!parsed) {
        parsed = true;
        simdjson::dom::element current, previous;
        if (!event.current.empty()) {
          if (current_parser_.parse(event.current).get(current) != simdjson::SUCCESS) {
            *error = "cannot parse " + event.resource_type + "/" + event.id;
            return false;
          }
          context.current = current;
        }
        if (!event.previous.empty()) {
          if (previous_parser_.parse(event.previous).get(previous) != simdjson::SUCCESS) {
            *error = "cannot parse the previous version of " + event.resource_type + "/" + event.id;
            return false;
          }
          context.previous = previous;
        }
        // %resource is what the event is about: the deleted version for a delete.
        context.resource = context.current ? context.current : context.previous;
      }
      auto verdict = evaluator_.EvaluatesToTrue(*trigger.criteria, context);
      if (auto* failure = std::get_if<fhirpath::EvalError>(&verdict)) {
        MatcherTopic& topic = topics_[trigger.topic];
        on_error({&topic, &trigger.criteria_text, failure->message, topic.fhirpath_errors == 0});
        ++topic.fhirpath_errors;
        continue;
      }
      if (!std::get<bool>(verdict)) continue;
    }
    matched->push_back(trigger.topic);
  }
  std::sort(matched->begin(), matched->end());
  return true;
}

}  // namespace topicbridge
