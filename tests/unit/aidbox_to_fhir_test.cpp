// Aidbox format -> FHIR format: references, choices (at any depth, in extensions, backbone
// elements and contained resources), pass-through of what does not fit the model, and a round
// trip FHIR -> Aidbox -> FHIR over the R4 examples of shared/conformance/fhirpath/resources.
#include "topicbridge/aidbox_to_fhir.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../../src/aidbox/fhir_model.h"

namespace topicbridge {
namespace {

namespace model = fhir_model;

// Structural equality; object keys in any order. *where names the first difference.
bool JsonEqual(simdjson::dom::element a, simdjson::dom::element b, const std::string& path,
               std::string* where) {
  using simdjson::dom::element_type;
  const auto differ = [&](std::string_view what) {
    *where = path + ": " + std::string(what);
    return false;
  };
  if (a.is_number() && b.is_number()) {
    if (std::fabs(double(a.get_double().value_unsafe()) - double(b.get_double().value_unsafe())) >
        1e-9)
      return differ("numbers differ");
    return true;
  }
  if (a.type() != b.type()) return differ("types differ");
  switch (a.type()) {
    case element_type::OBJECT: {
      const simdjson::dom::object oa = a.get_object().value_unsafe();
      const simdjson::dom::object ob = b.get_object().value_unsafe();
      if (oa.size() != ob.size()) return differ("key counts differ");
      for (auto field : oa) {
        simdjson::dom::element other;
        if (ob[field.key].get(other) != simdjson::SUCCESS)
          return differ("missing key " + std::string(field.key));
        if (!JsonEqual(field.value, other, path + "." + std::string(field.key), where))
          return false;
      }
      return true;
    }
    case element_type::ARRAY: {
      const simdjson::dom::array aa = a.get_array().value_unsafe();
      const simdjson::dom::array ab = b.get_array().value_unsafe();
      if (aa.size() != ab.size()) return differ("lengths differ");
      std::size_t i = 0;
      for (auto ia = aa.begin(), ib = ab.begin(); ia != aa.end(); ++ia, ++ib, ++i) {
        if (!JsonEqual(*ia, *ib, path + "[" + std::to_string(i) + "]", where)) return false;
      }
      return true;
    }
    default:
      return simdjson::minify(a) == simdjson::minify(b) ? true : differ("values differ");
  }
}

bool JsonEqual(std::string_view a, std::string_view b, std::string* where) {
  simdjson::dom::parser pa, pb;
  simdjson::dom::element ea, eb;
  if (pa.parse(a.data(), a.size()).get(ea) != simdjson::SUCCESS) return *where = "a invalid", false;
  if (pb.parse(b.data(), b.size()).get(eb) != simdjson::SUCCESS) return *where = "b invalid", false;
  return JsonEqual(ea, eb, "", where);
}

std::string Convert(std::string_view aidbox, ConversionStats* stats = nullptr) {
  return AidboxToFhir().ConvertResource(aidbox, stats);
}

void CheckConverts(std::string_view aidbox, std::string_view fhir) {
  ConversionStats stats;
  const std::string got = Convert(aidbox, &stats);
  std::string where;
  INFO("got: " << got);
  CHECK_MESSAGE(JsonEqual(got, fhir, &where), where);
  CHECK(stats.warnings == 0);
  CHECK(stats.unknown_elements == 0);
}

// ---- FHIR -> Aidbox, the inverse the round trip needs, from the same model table ----

class FhirToAidbox {
 public:
  // Counts of what the inverse rewrote, so that the round trip can check the converter undid
  // exactly as many (rather than passing FHIR-form keys through).
  std::uint64_t choices = 0, references = 0;

  std::string Resource(simdjson::dom::element resource) {
    out_.Clear();
    Value({model::Kind::kResource, {}, 0}, resource);
    return out_.Take();
  }

 private:
  void Fields(const model::Scope& scope, simdjson::dom::object object,
              std::string_view skip_key = {}) {
    for (auto field : object) {
      if (field.key == skip_key) continue;
      if (field.key.size() > 1 && field.key[0] == '_') {
        out_.Key(field.key);
        Value({model::Kind::kComplex, model::TypeScope("Element"), 0}, field.value);
        continue;
      }
      const model::Element element = model::Child(scope, field.key);
      if (element.kind == model::Kind::kUnknown) {
        if (auto split = model::SplitFhirChoiceKey(scope, field.key)) {
          ++choices;
          out_.Key(split->element);
          out_.BeginObject();
          out_.Key(model::kChoiceTypes[split->choice_type].aidbox_key);
          Value(model::ChoiceTypeElement(split->choice_type), field.value);
          out_.EndObject();
          continue;
        }
      }
      out_.Key(field.key);
      Value(element, field.value);
    }
  }

  void Value(const model::Element& element, simdjson::dom::element value) {
    if (value.is_array()) {
      const simdjson::dom::array items = value.get_array().value_unsafe();
      out_.BeginArray();
      for (auto item : items) Value(element, item);
      out_.EndArray();
      return;
    }
    if (!value.is_object()) return out_.Element(value);
    const simdjson::dom::object object = value.get_object().value_unsafe();
    std::string_view type;
    switch (element.kind) {
      case model::Kind::kComplex:
        out_.BeginObject();
        Fields(element.children, object);
        return out_.EndObject();
      case model::Kind::kReference:
        return Reference(element.children, object);
      case model::Kind::kResource:
        if (object["resourceType"].get(type) != simdjson::SUCCESS) break;
        out_.BeginObject();
        out_.Key("resourceType");
        out_.String(type);
        Fields(model::TypeScope(type), object, "resourceType");
        return out_.EndObject();
      default:
        break;
    }
    out_.Element(value);
  }

  void Reference(const model::Scope& scope, simdjson::dom::object object) {
    std::string_view reference;
    const bool has = object["reference"].get(reference) == simdjson::SUCCESS;
    out_.BeginObject();
    if (has) {
      ++references;
      const std::size_t slash = reference.find('/');
      if (reference.starts_with("#")) {
        out_.Key("localRef");
        out_.String(reference.substr(1));
      } else if (slash != std::string_view::npos && reference.find(':') == std::string_view::npos &&
                 reference.find('/', slash + 1) == std::string_view::npos) {
        out_.Key("resourceType");
        out_.String(reference.substr(0, slash));
        out_.Key("id");
        out_.String(reference.substr(slash + 1));
      } else {
        out_.Key("uri");
        out_.String(reference);
      }
    }
    for (auto field : object) {
      if (has && field.key == "reference") continue;
      out_.Key(field.key);
      Value(model::Child(scope, field.key), field.value);
    }
    out_.EndObject();
  }

  JsonWriter out_;
};

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace

TEST_CASE("model: choices, references, backbone, alias and inherited elements") {
  CHECK(model::ElementAt("Observation.value").kind == model::Kind::kChoice);
  CHECK(model::ElementAt("Observation.subject").kind == model::Kind::kReference);
  CHECK(model::ElementAt("Observation.code").kind == model::Kind::kComplex);
  CHECK(model::ElementAt("Observation.code").children.base == "CodeableConcept");
  CHECK(model::ElementAt("Observation.id").kind == model::Kind::kPrimitive);
  CHECK(model::ElementAt("Observation.contained").kind == model::Kind::kResource);
  CHECK(model::ElementAt("Patient.meta.tag").kind == model::Kind::kComplex);
  CHECK(model::ElementAt("Extension.value").kind == model::Kind::kChoice);
  CHECK(model::ElementAt("Reference.identifier.assigner").kind == model::Kind::kReference);
  CHECK(model::ElementAt("Age.value").kind == model::Kind::kPrimitive);
  CHECK(model::ElementAt("Questionnaire.item.item.item.enableWhen.answer").kind ==
        model::Kind::kChoice);
  CHECK(model::ElementAt("Observation.component.extension.value").kind == model::Kind::kChoice);
  CHECK(model::ElementAt("Observation.nonsense").kind == model::Kind::kUnknown);
  CHECK(model::ElementAt("AidboxTopicDestination.extension.value").kind == model::Kind::kChoice);
  const auto split = model::SplitFhirChoiceKey(model::TypeScope("Observation"), "valueQuantity");
  REQUIRE(split);
  CHECK(split->element == "value");
  CHECK(std::string_view(model::kChoiceTypes[split->choice_type].aidbox_key) == "Quantity");
  CHECK(!model::SplitFhirChoiceKey(model::TypeScope("Observation"), "valueFoo"));
}

TEST_CASE("references: {resourceType,id} keeps display/identifier/type, {uri}, {localRef}") {
  CheckConverts(
      R"({"resourceType":"Observation","status":"final",
          "subject":{"resourceType":"Patient","id":"pt-1","display":"Pat","type":"Patient",
                     "identifier":{"system":"s","value":"v",
                                   "assigner":{"resourceType":"Organization","id":"o"}}},
          "performer":[{"uri":"http://x/Patient/1"},{"localRef":"abc"}]})",
      R"({"resourceType":"Observation","status":"final",
          "subject":{"reference":"Patient/pt-1","display":"Pat","type":"Patient",
                     "identifier":{"system":"s","value":"v",
                                   "assigner":{"reference":"Organization/o"}}},
          "performer":[{"reference":"http://x/Patient/1"},{"reference":"#abc"}]})");
}

TEST_CASE("references already in FHIR form, or with display only, are kept") {
  CheckConverts(R"({"resourceType":"Observation","subject":{"reference":"Patient/1"},
                    "performer":[{"display":"Dr X"}]})",
                R"({"resourceType":"Observation","subject":{"reference":"Patient/1"},
                    "performer":[{"display":"Dr X"}]})");
}

TEST_CASE("choices: value Quantity/string, onset dateTime") {
  CheckConverts(R"({"resourceType":"Observation","value":{"Quantity":{"value":1.5,"unit":"kg"}},
                    "effective":{"dateTime":"2020-01-01"}})",
                R"({"resourceType":"Observation","valueQuantity":{"value":1.5,"unit":"kg"},
                    "effectiveDateTime":"2020-01-01"})");
  CheckConverts(R"({"resourceType":"Observation","value":{"string":"x"}})",
                R"({"resourceType":"Observation","valueString":"x"})");
  CheckConverts(R"({"resourceType":"Condition","onset":{"dateTime":"2021-02-03T04:05:06Z"},
                    "abatement":{"Age":{"value":3}}})",
                R"({"resourceType":"Condition","onsetDateTime":"2021-02-03T04:05:06Z",
                    "abatementAge":{"value":3}})");
}

TEST_CASE("choices in extensions (nested too), primitive extensions and backbone elements") {
  CheckConverts(
      R"({"resourceType":"Patient",
          "extension":[{"url":"a","value":{"string":"s"}},
                       {"url":"b","extension":[{"url":"c","value":{"CodeableConcept":{"text":"t"}}},
                                               {"url":"d","value":{"Reference":
                                                 {"resourceType":"Patient","id":"p2"}}}]}],
          "_birthDate":{"extension":[{"url":"e","value":{"boolean":true}}]},
          "birthDate":"2000-01-01",
          "contact":[{"extension":[{"url":"f","value":{"integer":1}}],
                      "organization":{"resourceType":"Organization","id":"o1"}}],
          "deceased":{"boolean":false}})",
      R"({"resourceType":"Patient",
          "extension":[{"url":"a","valueString":"s"},
                       {"url":"b","extension":[{"url":"c","valueCodeableConcept":{"text":"t"}},
                                               {"url":"d","valueReference":
                                                 {"reference":"Patient/p2"}}]}],
          "_birthDate":{"extension":[{"url":"e","valueBoolean":true}]},
          "birthDate":"2000-01-01",
          "contact":[{"extension":[{"url":"f","valueInteger":1}],
                      "organization":{"reference":"Organization/o1"}}],
          "deceasedBoolean":false})");
  CheckConverts(
      R"({"resourceType":"Observation","component":[
          {"code":{"text":"c"},"value":{"Quantity":{"value":2}},
           "referenceRange":[{"low":{"value":1}}]}]})",
      R"({"resourceType":"Observation","component":[
          {"code":{"text":"c"},"valueQuantity":{"value":2},
           "referenceRange":[{"low":{"value":1}}]}]})");
}

TEST_CASE("recursive elements defined elsewhere: Questionnaire.item.item") {
  CheckConverts(
      R"({"resourceType":"Questionnaire","item":[{"linkId":"1","item":[{"linkId":"1.1",
          "enableWhen":[{"question":"1","operator":"=","answer":{"boolean":true}}],
          "item":[{"linkId":"1.1.1","initial":[{"value":{"Coding":{"code":"x"}}}]}]}]}]})",
      R"({"resourceType":"Questionnaire","item":[{"linkId":"1","item":[{"linkId":"1.1",
          "enableWhen":[{"question":"1","operator":"=","answerBoolean":true}],
          "item":[{"linkId":"1.1.1","initial":[{"valueCoding":{"code":"x"}}]}]}]}]})");
}

TEST_CASE("contained resources are converted with their own type's paths") {
  CheckConverts(
      R"({"resourceType":"Patient","contained":[
          {"resourceType":"Observation","id":"o1","value":{"string":"x"},
           "subject":{"localRef":"p"}},
          {"resourceType":"Condition","id":"c1","onset":{"string":"child"}}],
          "generalPractitioner":[{"localRef":"o1"}]})",
      R"({"resourceType":"Patient","contained":[
          {"resourceType":"Observation","id":"o1","valueString":"x",
           "subject":{"reference":"#p"}},
          {"resourceType":"Condition","id":"c1","onsetString":"child"}],
          "generalPractitioner":[{"reference":"#o1"}]})");
}

TEST_CASE("unknown shapes pass through unchanged and are counted with their path") {
  const std::string_view in =
      R"({"resourceType":"Observation","value":{"Foo":1},
          "code":{"resourceType":"Patient","id":"p"},
          "extension":[{"url":"u","value":{"string":"a","boolean":true}}],
          "status":{"x":1}})";
  ConversionStats stats;
  const std::string got = Convert(in, &stats);
  std::string where;
  CHECK_MESSAGE(JsonEqual(got, in, &where), where);
  CHECK(stats.warnings == 4);
  REQUIRE(stats.samples.size() == 4);
  CHECK(stats.samples[0] == "Observation.value: not a choice of an allowed type");
  CHECK(stats.samples[1] == "Observation.code: reference-shaped object at a non-Reference path");
  CHECK(stats.samples[2] == "Observation.extension.value: not a choice of an allowed type");
  CHECK(stats.samples[3] == "Observation.status: object at a primitive path");
}

TEST_CASE("elements the model lacks are copied and counted; FHIR-form choices still descend") {
  ConversionStats stats;
  const std::string got = Convert(
      R"({"resourceType":"Observation","myExt":{"subject":{"resourceType":"Patient","id":"1"}},
          "extension":[{"url":"u","valueReference":{"resourceType":"Patient","id":"2"}}]})",
      &stats);
  std::string where;
  CHECK_MESSAGE(
      JsonEqual(got,
                R"({"resourceType":"Observation","myExt":{"subject":{"resourceType":"Patient",
                    "id":"1"}},"extension":[{"url":"u","valueReference":{"reference":"Patient/2"}}]})",
                &where),
      where);
  CHECK(stats.unknown_elements == 1);
  CHECK(stats.warnings == 0);
  CHECK(stats.references == 1);
}

TEST_CASE("an Aidbox custom resource type keeps DomainResource's elements") {
  CheckConverts(
      R"({"resourceType":"AidboxSubscriptionTopic","extension":[{"url":"u","value":{"code":"c"}}]})",
      R"({"resourceType":"AidboxSubscriptionTopic","extension":[{"url":"u","valueCode":"c"}]})");
}

TEST_CASE("WriteFields skips the caller's keys; WriteField and WriteElement take FHIR paths") {
  simdjson::dom::parser parser;
  simdjson::dom::element root = parser.parse(std::string_view(
      R"({"id":"1","meta":{"tag":[{"code":"t"}],"source":"s"},"status":"final",
              "value":{"integer":7},"subject":{"resourceType":"Patient","id":"p"}})"));
  const simdjson::dom::object resource = root.get_object().value_unsafe();
  AidboxToFhir converter;
  ConversionStats stats;
  JsonWriter out;
  out.BeginObject();
  out.Key("resourceType");
  out.String("Observation");
  out.Key("meta");
  out.BeginObject();
  const simdjson::dom::object meta = resource["meta"].get_object().value_unsafe();
  for (auto field : meta) converter.WriteField("Meta", field.key, field.value, &out, &stats);
  out.EndObject();
  converter.WriteFields("Observation", resource, {"id", "meta"}, &out, &stats);
  out.Key("focus");
  converter.WriteElement("Observation.focus", resource["subject"].value_unsafe(), &out, &stats);
  out.EndObject();
  std::string where;
  CHECK_MESSAGE(JsonEqual(out.str(),
                          R"({"resourceType":"Observation","meta":{"tag":[{"code":"t"}],
                              "source":"s"},"status":"final","valueInteger":7,
                              "subject":{"reference":"Patient/p"},
                              "focus":{"reference":"Patient/p"}})",
                          &where),
                where);
  CHECK(stats.references == 2);
  CHECK(stats.choices == 1);
  CHECK(stats.warnings == 0);
}

TEST_CASE("invalid input gives an empty string") {
  CHECK(Convert("not json").empty());
  CHECK(Convert(R"({"id":"no type"})").empty());
}

TEST_CASE("round trip FHIR -> Aidbox -> FHIR over the R4 examples") {
  const char* env = std::getenv("TOPICBRIDGE_SHARED_DIR");
  const std::filesystem::path dir =
      std::filesystem::path(env != nullptr ? env : "") / "conformance/fhirpath/resources";
  if (env == nullptr || !std::filesystem::is_directory(dir)) {
    MESSAGE("skipped: no shared examples at " << dir.string());
    return;
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  REQUIRE(!files.empty());
  FhirToAidbox to_aidbox;
  AidboxToFhir to_fhir;
  std::size_t passed = 0, fragments = 0;
  ConversionStats total;
  for (const auto& file : files) {
    CAPTURE(file.filename().string());
    const std::string fhir = ReadFile(file);
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    REQUIRE(parser.parse(fhir).get(root) == simdjson::SUCCESS);
    if (root["resourceType"].error() != simdjson::SUCCESS) {
      ++fragments;  // e.g. questionnaire-part-example.json: an element, not a resource
      continue;
    }
    to_aidbox.choices = to_aidbox.references = 0;
    const std::string aidbox = to_aidbox.Resource(root);
    ConversionStats stats;
    const std::string back = to_fhir.ConvertResource(aidbox, &stats);
    std::string where;
    const bool equal = JsonEqual(back, fhir, &where) && stats.choices == to_aidbox.choices &&
                       stats.references == to_aidbox.references;
    CHECK_MESSAGE(equal, where);
    CHECK(stats.choices == to_aidbox.choices);
    CHECK(stats.references == to_aidbox.references);
    passed += equal;
    total.references += stats.references;
    total.choices += stats.choices;
    total.unknown_elements += stats.unknown_elements;
    // Warnings are allowed: some examples are deliberately invalid FHIR for FHIRPath tests
    // (parameters-example-types.json has an object as valueUuid); they are copied unchanged.
    total.warnings += stats.warnings;
    for (const std::string& sample : stats.samples) total.samples.push_back(sample);
  }
  CHECK(passed == files.size() - fragments);
  std::string samples;
  for (const std::string& sample : total.samples) samples += "\n  " + sample;
  MESSAGE("round trip: " << passed << "/" << files.size() - fragments << " resources equal ("
                         << fragments << " fragment(s) without resourceType skipped); "
                         << total.references << " references, " << total.choices
                         << " choices converted, " << total.unknown_elements
                         << " unknown elements copied, " << total.warnings
                         << " warnings:" << samples);
}

}  // namespace topicbridge
