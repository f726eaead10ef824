// FHIRPath engine: the subscription criteria topicbridge must support, syntax and evaluation
// errors, typing with the FHIR R4 model, resolve(), and the result printer.
#include "topicbridge/fhirpath.h"

#include <doctest/doctest.h>

#include <map>
#include <string>

namespace fp = topicbridge::fhirpath;

namespace {

// Keeps parsed documents alive for the duration of a test.
class Docs {
 public:
  simdjson::dom::element Parse(const std::string& json) {
    parsers_.push_back(std::make_unique<simdjson::dom::parser>());
    simdjson::dom::element e;
    REQUIRE(parsers_.back()->parse(json).get(e) == simdjson::SUCCESS);
    return e;
  }

 private:
  std::vector<std::unique_ptr<simdjson::dom::parser>> parsers_;
};

fp::Expression Compile(const std::string& text) {
  auto r = fp::Expression::Compile(text);
  if (auto* e = std::get_if<fp::SyntaxError>(&r))
    FAIL("syntax error: " << e->message << " in " << text);
  return std::get<fp::Expression>(r);
}

// Evaluates and prints; "error: ..." on evaluation errors.
std::string Eval(const std::string& text, const fp::Context& context) {
  auto r = fp::Evaluate(Compile(text), context);
  if (!r.ok()) return "error: " + r.error().message;
  return fp::PrintResultJson(r.values());
}

bool Criteria(const std::string& text, const fp::Context& context) {
  auto r = fp::EvaluatesToTrue(Compile(text), context);
  if (auto* e = std::get_if<fp::EvalError>(&r)) FAIL("evaluation error: " << e->message);
  return std::get<bool>(r);
}

const char* kPatient = R"({"resourceType":"Patient","id":"p1","active":true,
  "name":[{"use":"official","family":"Chalmers","given":["Peter","James"]},{"given":["Jim"]}],
  "birthDate":"1974-12-25","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime","valueDateTime":"1974-12-25T14:35:45-05:00"}]},
  "identifier":[{"system":"urn:oid:1.2.3","value":"12345"},{"system":"http://example.org/patient-portal","value":"abc"}],
  "status":"completed"})";

const char* kObservation = R"({"resourceType":"Observation","id":"o1","status":"final",
  "code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose"}]},
  "subject":{"reference":"Patient/p1"},
  "valueQuantity":{"value":185,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}})";

class MapResolver : public fp::Resolver {
 public:
  std::map<std::string, simdjson::dom::element, std::less<>> resources;
  int calls = 0;
  std::optional<simdjson::dom::element> Resolve(std::string_view reference) override {
    ++calls;
    auto it = resources.find(reference);
    if (it == resources.end()) return std::nullopt;
    return it->second;
  }
};

}  // namespace

TEST_CASE("the issue's subscription criteria evaluate as Aidbox triggers expect") {
  Docs docs;
  auto patient = docs.Parse(kPatient);
  auto observation = docs.Parse(kObservation);

  fp::Context p(patient);
  CHECK(Criteria("name.exists()", p));
  CHECK(Criteria("status = 'completed' or status = 'amended'", p));
  CHECK_FALSE(Criteria("telecom.exists()", p));

  SUBCASE("status transition with %previous and %current") {
    auto before = docs.Parse(R"({"resourceType":"Encounter","status":"in-progress"})");
    auto after = docs.Parse(R"({"resourceType":"Encounter","status":"completed"})");
    fp::Context c(after);
    c.current = after;
    c.previous = before;
    CHECK(Criteria("%previous.status = 'in-progress' and %current.status = 'completed'", c));
    c.previous = after;
    CHECK_FALSE(Criteria("%previous.status = 'in-progress' and %current.status = 'completed'", c));
  }

  SUBCASE("a create has no %previous: it is the empty collection") {
    auto final_obs = docs.Parse(R"({"resourceType":"Observation","status":"final"})");
    auto prelim = docs.Parse(R"({"resourceType":"Observation","status":"preliminary"})");
    const char* criteria =
        "%current.status = 'final' and (%previous.empty() or %previous.status != 'final')";
    fp::Context c(final_obs);
    c.current = final_obs;
    CHECK(Criteria(criteria, c));
    c.previous = prelim;
    CHECK(Criteria(criteria, c));
    c.previous = final_obs;
    CHECK_FALSE(Criteria(criteria, c));
  }

  SUBCASE("birthDate changes compare dates") {
    auto older = docs.Parse(R"({"resourceType":"Patient","birthDate":"1974-12-24"})");
    fp::Context c(patient);
    c.current = patient;
    c.previous = older;
    CHECK(Criteria("%current.birthDate != %previous.birthDate", c));
    c.previous = patient;
    CHECK_FALSE(Criteria("%current.birthDate != %previous.birthDate", c));
  }

  SUBCASE("resolve() goes through the Resolver") {
    MapResolver resolver;
    resolver.resources["Patient/p1"] = patient;
    fp::Context c(observation);
    c.resolver = &resolver;
    CHECK(Criteria("subject.resolve().identifier.where(system.contains('patient-portal')).exists()",
                   c));
    CHECK(resolver.calls == 1);
    resolver.resources.clear();
    CHECK_FALSE(Criteria(
        "subject.resolve().identifier.where(system.contains('patient-portal')).exists()", c));
  }

  SUBCASE("choice types: value, valueQuantity and ofType(Quantity)") {
    fp::Context c(observation);
    const char* criteria =
        "code.coding.where(system = 'http://loinc.org' and code = '2339-0').exists() and "
        "value.ofType(Quantity).value > 180";
    CHECK(Criteria(criteria, c));
    CHECK(Eval("Observation.value.value", c) == "[185]");
    CHECK(Eval("valueQuantity.unit", c) == "[\"mg/dL\"]");
    CHECK(Eval("value is Quantity", c) == "[true]");
    CHECK(Eval("value > 180 'mg/dL'", c) == "[true]");
    CHECK(Eval("value.type().name", c) == "[\"Quantity\"]");
    auto low = docs.Parse(
        R"({"resourceType":"Observation","code":{"coding":[{"system":"http://loinc.org","code":"2339-0"}]},
      "valueQuantity":{"value":90,"unit":"mg/dL"}})");
    fp::Context l(low);
    CHECK_FALSE(Criteria(criteria, l));
  }
}

TEST_CASE("primitives carry their _name extensions") {
  Docs docs;
  fp::Context c(docs.Parse(kPatient));
  CHECK(Eval("birthDate.extension.url", c) ==
        R"(["http://hl7.org/fhir/StructureDefinition/patient-birthTime"])");
  CHECK(
      Eval("birthDate.extension('http://hl7.org/fhir/StructureDefinition/patient-birthTime').value",
           c) == R"(["1974-12-25T14:35:45-05:00"])");
  CHECK(Eval("birthDate.hasValue()", c) == "[true]");
  CHECK(Eval("birthDate < @2000-01-01", c) == "[true]");
  CHECK(Eval("birthDate is date", c) == "[true]");
}

TEST_CASE("syntax errors report the offending position") {
  auto r = fp::Expression::Compile("name.where(given = 'x'");
  REQUIRE(std::holds_alternative<fp::SyntaxError>(r));
  CHECK(std::get<fp::SyntaxError>(r).position == 22);
  CHECK(std::get<fp::SyntaxError>(r).column == 23);

  r = fp::Expression::Compile("name.exists() and and");
  REQUIRE(std::holds_alternative<fp::SyntaxError>(r));
  CHECK(std::get<fp::SyntaxError>(r).position == 18);

  r = fp::Expression::Compile("name.frobnicate()");
  REQUIRE(std::holds_alternative<fp::SyntaxError>(r));
  CHECK(std::get<fp::SyntaxError>(r).position == 5);
  CHECK(std::get<fp::SyntaxError>(r).message.find("frobnicate") != std::string::npos);

  r = fp::Expression::Compile("'unterminated");
  REQUIRE(std::holds_alternative<fp::SyntaxError>(r));
  CHECK(std::get<fp::SyntaxError>(r).position == 0);

  r = fp::Expression::Compile("substring()");
  REQUIRE(std::holds_alternative<fp::SyntaxError>(r));
  CHECK(std::get<fp::SyntaxError>(r).message.find("argument") != std::string::npos);

  CHECK(std::holds_alternative<fp::SyntaxError>(fp::Expression::Compile("@2019-13-01")));
  CHECK(std::holds_alternative<fp::SyntaxError>(fp::Expression::Compile("1 +")));
}

TEST_CASE("evaluation errors are values, never exceptions") {
  Docs docs;
  fp::Context c(docs.Parse(kPatient));
  CHECK(Eval("name.given.not()", c).starts_with("error: "));  // not() on many items
  CHECK(Eval("%undefined", c).starts_with("error: "));
  CHECK(Eval("name.given.single()", c).starts_with("error: "));
  CHECK(Eval("'a'.matches('(')", c).starts_with("error: "));
  CHECK(Eval("1 < 'a'", c).starts_with("error: "));
  CHECK(Eval("name.given + 1", c).starts_with("error: "));

  auto many = fp::EvaluatesToTrue(Compile("name.given"), c);
  CHECK(std::holds_alternative<fp::EvalError>(many));
  auto empty = fp::EvaluatesToTrue(Compile("telecom"), c);
  REQUIRE(std::holds_alternative<bool>(empty));
  CHECK_FALSE(std::get<bool>(empty));
}

TEST_CASE("the printer writes values as the conformance result lists do") {
  fp::Context none;
  CHECK(Eval("1 | 2.5 | 'a\"b' | true", none) == R"([1,2.5,"a\"b",true])");
  CHECK(Eval("@2019-02-03 | @2019-02-03T10:00:00.000+01:00 | @T14:30", none) ==
        R"(["2019-02-03","2019-02-03T10:00:00.000+01:00","14:30"])");
  CHECK(Eval("2 'mo' | 7 days", none) == R"(["2 'mo'","7 days"])");
  CHECK(Eval("1 year + 6 months", none) == R"(["18 months"])");
  CHECK(Eval("5L", none) == R"(["5"])");
  CHECK(Eval("{}", none) == "[]");
  CHECK(Eval("(1 | 2 | 3).sum() / 2", none) == "[3]");
  CHECK(Eval("0.1 + 0.2", none) == "[0.3]");
  Docs docs;
  fp::Context c(docs.Parse(kPatient));
  CHECK(Eval("name[1]", c) == R"([{"given":["Jim"]}])");
  CHECK(Eval("name.given", c) == R"(["Peter","James","Jim"])");
}

TEST_CASE("variables: environment constants, user JSON and %resource") {
  Docs docs;
  fp::Context c(docs.Parse(kPatient));
  REQUIRE(c.SetVariableJson("limit", "180"));
  REQUIRE(c.SetVariableJson("codes", R"(["a","b"])"));
  CHECK_FALSE(c.SetVariableJson("bad", "{"));
  CHECK(Eval("%limit + 1", c) == "[181]");
  CHECK(Eval("%codes.count()", c) == "[2]");
  CHECK(Eval("'b' in %codes", c) == "[true]");
  CHECK(Eval("%ucum", c) == R"(["http://unitsofmeasure.org"])");
  CHECK(Eval("%resource.id", c) == R"(["p1"])");
  CHECK(Eval("%context.id", c) == R"(["p1"])");
  CHECK(Eval("%current", c) == "[]");
  CHECK(Eval("%previous.exists()", c) == "[false]");
}

TEST_CASE("%factory builds primitives with extensions, Extensions and Codings") {
  fp::Context none;
  CHECK(Eval("%factory.Coding('http://loinc.org', '2339-0')", none) ==
        R"([{"system":"http://loinc.org","code":"2339-0"}])");
  CHECK(Eval("%factory.Extension('u', 5).value", none) == "[5]");
  CHECK(Eval("%factory.date('2024-01-01', %factory.Extension('e', 'x')).extension.value", none) ==
        R"(["x"])");
  CHECK(Eval("%factory.date('2024-01-01') < @2025", none) == "[true]");
  CHECK(std::holds_alternative<fp::Expression>(fp::Expression::Compile("date('2024')")));
  CHECK(Eval("date('2024')", none).starts_with("error: "));
}

TEST_CASE("lambdas: $this, $index, $total and repeat()") {
  fp::Context none;
  CHECK(Eval("(1 | 2 | 3).where($this > 1)", none) == "[2,3]");
  CHECK(Eval("(10 | 20 | 30).select($index)", none) == "[0,1,2]");
  CHECK(Eval("(1 | 2 | 3).aggregate($total + $this, 0)", none) == "[6]");
  CHECK(Eval("iif(1 > 2, 'yes', 'no')", none) == R"(["no"])");
  Docs docs;
  fp::Context c(docs.Parse(R"({"item":[{"id":"a","item":[{"id":"b"}]}]})"));
  CHECK(Eval("repeat(item).id", c) == R"(["a","b"])");
  CHECK(Eval("descendants().id", c) == R"(["a","b"])");
}

TEST_CASE("an Evaluator is reusable and results stay valid until its next call") {
  Docs docs;
  fp::Context c(docs.Parse(kPatient));
  fp::Evaluator evaluator;
  auto upper = Compile("name.given.select(upper())");
  for (int i = 0; i < 3; ++i) {
    auto r = evaluator.Evaluate(upper, c);
    REQUIRE(r.ok());
    CHECK(fp::PrintResultJson(r.values()) == R"(["PETER","JAMES","JIM"])");
  }
  auto bad = evaluator.Evaluate(Compile("%nope"), c);
  CHECK_FALSE(bad.ok());
  auto again = evaluator.Evaluate(upper, c);
  CHECK(again.ok());
}

TEST_CASE("trace() reports to the context's tracer and passes its input through") {
  Docs docs;
  fp::Context c(docs.Parse(kPatient));
  std::vector<std::string> seen;
  c.trace = [&](std::string_view name, std::span<const fp::Value> values) {
    seen.push_back(std::string(name) + "=" + fp::PrintResultJson(values));
  };
  CHECK(Eval("name.trace('names', given).count()", c) == "[2]");
  REQUIRE(seen.size() == 1);
  CHECK(seen[0] == R"(names=["Peter","James","Jim"])");
}

TEST_CASE("untyped evaluation navigates plain JSON") {
  Docs docs;
  fp::Context c(docs.Parse(kObservation));
  c.typed = false;
  CHECK(Eval("value", c) == "[]");  // no model: no choice-type expansion
  CHECK(Eval("valueQuantity.value", c) == "[185]");
}
