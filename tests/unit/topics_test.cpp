#include <doctest/doctest.h>

#include "topicbridge/topic_matcher.h"

using namespace topicbridge;

namespace {

TopicConfig Topic(std::string url, std::string resource, std::string criteria,
                  std::vector<std::string> interactions = {}) {
  TopicConfig t;
  t.url = std::move(url);
  t.path = "topics[0]";
  TriggerConfig trigger;
  trigger.resource = std::move(resource);
  trigger.fhir_path_criteria = std::move(criteria);
  trigger.supported_interaction = std::move(interactions);
  trigger.path = "topics[0].trigger[0]";
  t.triggers.push_back(trigger);
  return t;
}

ResourceEvent Event(Interaction interaction, std::string current, std::string previous = "") {
  ResourceEvent e;
  e.resource_type = "Patient";
  e.id = "pt-1";
  e.interaction = interaction;
  e.current = std::move(current);
  e.previous = std::move(previous);
  return e;
}

struct Fixture {
  std::vector<ConfigProblem> problems;
  std::vector<std::size_t> matched;
  std::vector<std::string> errors;
  std::string error;
  bool Fires(TopicMatcher& m, const ResourceEvent& e) {
    REQUIRE(m.Match(
        e, &matched, [&](const CriteriaError& c) { errors.push_back(c.message); }, &error));
    return !matched.empty();
  }
};

}  // namespace

TEST_CASE("name.exists() fires for a named Patient and not for an anonymous one") {
  Fixture f;
  TopicMatcher m({Topic("patient-topic", "Patient", "name.exists()")}, &f.problems);
  REQUIRE(f.problems.empty());
  CHECK(f.Fires(
      m, Event(Interaction::kCreate, R"({"resourceType":"Patient","name":[{"family":"A"}]})")));
  CHECK_FALSE(f.Fires(m, Event(Interaction::kCreate, R"({"resourceType":"Patient"})")));
}

TEST_CASE("supportedInteraction filters") {
  Fixture f;
  TopicMatcher m({Topic("t", "Patient", "", {"update"})}, &f.problems);
  CHECK_FALSE(f.Fires(m, Event(Interaction::kCreate, "{}")));
  CHECK(f.Fires(m, Event(Interaction::kUpdate, "{}", "{}")));
}

TEST_CASE("%previous and %current criteria") {
  Fixture f;
  TopicMatcher m({Topic("t", "Patient", "%current.birthDate != %previous.birthDate")}, &f.problems);
  REQUIRE(f.problems.empty());
  CHECK(f.Fires(m, Event(Interaction::kUpdate, R"({"birthDate":"1981-01-01"})",
                         R"({"birthDate":"1980-01-01"})")));
  CHECK_FALSE(f.Fires(m, Event(Interaction::kUpdate, R"({"birthDate":"1980-01-01"})",
                               R"({"birthDate":"1980-01-01"})")));
}

TEST_CASE("a syntax error names the topic, the expression and the column") {
  Fixture f;
  TopicMatcher m({Topic("http://x/bad", "Patient", "name.exists(")}, &f.problems);
  REQUIRE(f.problems.size() == 1);
  CHECK(f.problems[0].path == "topics[0].trigger[0].fhirPathCriteria");
  CHECK(f.problems[0].message.find("http://x/bad") != std::string::npos);
  CHECK(f.problems[0].message.find("'name.exists('") != std::string::npos);
  CHECK(f.problems[0].message.find("column") != std::string::npos);
  CHECK(m.topics().empty());
}

TEST_CASE("an evaluation error does not match and is reported once as first") {
  Fixture f;
  TopicMatcher m({Topic("t", "Patient", "name.family.not()")}, &f.problems);
  const auto e = Event(Interaction::kCreate, R"({"name":[{"family":"A"},{"family":"B"}]})");
  CHECK_FALSE(f.Fires(m, e));
  CHECK_FALSE(f.Fires(m, e));
  CHECK(f.errors.size() == 2);
  CHECK(m.topics()[0].fhirpath_errors == 2);
}

TEST_CASE("tables to decode come from the trigger types") {
  Fixture f;
  TopicMatcher m({Topic("a", "QuestionnaireResponse", "")}, &f.problems);
  const auto tables = m.TableTypes();
  REQUIRE(tables.count("questionnaireresponse") == 1);
  CHECK(tables.at("questionnaireresponse") == "QuestionnaireResponse");
}
