// FHIRPath evaluation throughput on one core: subscription-style criteria against a ~5 KB
// Patient, evaluated with one reused Evaluator. Prints evaluations/second and heap allocations
// per evaluation (counted by replacing global operator new) for each criterion.
//
// Usage: fhirpath_bench [seconds-per-criterion (default 1)] [only-label]
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <new>
#include <string>

#include "topicbridge/fhirpath.h"

namespace {
std::atomic<unsigned long long> g_allocations{0};
}  // namespace

void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size ? size : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace {

namespace fp = topicbridge::fhirpath;

std::string MakePatient(const char* birth_date, bool active) {
  std::string p =
      R"json({"resourceType":"Patient","id":"pat-1","meta":{"versionId":"12","lastUpdated":"2024-05-01T10:00:00Z",
"profile":["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
"text":{"status":"generated","div":"<div xmlns=\"http://www.w3.org/1999/xhtml\"><table><tbody><tr><td>Name</td><td>Peter James <b>Chalmers</b> (&quot;Jim&quot;)</td></tr><tr><td>Address</td><td>534 Erewhon, Pleasantville, Vic, 3999</td></tr><tr><td>Contacts</td> <td>Home: unknown. Work: (03) 5555 6473</td></tr><tr><td>Id</td><td>MRN: 12345 (Acme Healthcare)</td></tr><tr><td>Portal</td> <td>portal-778899</td></tr><tr><td>Language</td><td>English (Australia), Dutch</td></tr><tr><td>Practitioner</td><td>Dr Adam Careful </td></tr><tr><td>Organization</td><td>ACME Healthcare, Inc</td></tr><tr><td>Emergency contact</td><td>Margaret Chalmers, +61 3 5555 1234 </td></tr><tr><td>Next of kin</td><td>Bénédicte du Marché, +33 (237) 998327</td></tr></tbody></table></div>"},
"extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race","extension":[{"url":"ombCategory",
"valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"2106-3","display":"White"}},{"url":"text","valueString":"White"}]},
{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex","valueCode":"M"}],
"identifier":[{"use":"usual","type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR"}]},
"system":"urn:oid:1.2.36.146.595.217.0.1","value":"12345","period":{"start":"2001-05-06"},"assigner":{"display":"Acme Healthcare"}},
{"use":"secondary","system":"http://example.org/patient-portal","value":"portal-778899"},
{"use":"official","system":"http://hl7.org/fhir/sid/us-ssn","value":"000-12-3456"}],
"active":)json";
  p += active ? "true" : "false";
  p +=
      R"json(,"name":[{"use":"official","family":"Chalmers","given":["Peter","James"]},{"use":"usual","given":["Jim"]},
{"use":"maiden","family":"Windsor","given":["Peter","James"],"period":{"end":"2002"}}],
"telecom":[{"use":"home"},{"system":"phone","value":"(03) 5555 6473","use":"work","rank":1},
{"system":"phone","value":"(03) 3410 5613","use":"mobile","rank":2},{"system":"phone","value":"(03) 5555 8834","use":"old",
"period":{"end":"2014"}},{"system":"email","value":"peter.chalmers@example.org","use":"home"}],
"gender":"male","birthDate":")json";
  p += birth_date;
  p +=
      R"json(","_birthDate":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-birthTime",
"valueDateTime":"1974-12-25T14:35:45-05:00"}]},"deceasedBoolean":false,
"address":[{"use":"home","type":"both","text":"534 Erewhon St PeasantVille, Rainbow, Vic  3999","line":["534 Erewhon St"],
"city":"PleasantVille","district":"Rainbow","state":"Vic","postalCode":"3999","period":{"start":"1974-12-25"}},
{"use":"work","line":["1 Infinite Loop","Suite 200"],"city":"Cupertino","state":"CA","postalCode":"95014","country":"US"}],
"maritalStatus":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-MaritalStatus","code":"M","display":"Married"}]},
"multipleBirthBoolean":false,"photo":[{"contentType":"image/png","url":"http://example.org/photos/pat-1.png","size":20480,
"title":"Portrait, taken at the 2019 check-up","creation":"2019-03-14"}],
"contact":[{"relationship":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0131","code":"N"}]}],
"name":{"family":"du Marché","_family":{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/humanname-own-prefix",
"valueString":"VV"}]},"given":["Bénédicte"]},"telecom":[{"system":"phone","value":"+33 (237) 998327"}],
"address":{"use":"home","type":"both","line":["534 Erewhon St"],"city":"PleasantVille","district":"Rainbow","state":"Vic",
"postalCode":"3999","period":{"start":"1974-12-25"}},"gender":"female","period":{"start":"2012"},
"organization":{"reference":"Organization/1"}},{"relationship":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0131",
"code":"E"}]}],"name":{"family":"Chalmers","given":["Margaret"]},"telecom":[{"system":"phone","value":"+61 3 5555 1234",
"use":"home"},{"system":"email","value":"margaret@example.org"}]}],
"communication":[{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":"en-AU","display":"English (Australia)"}],
"text":"English"},"preferred":true},{"language":{"coding":[{"system":"urn:ietf:bcp:47","code":"nl","display":"Dutch"}]}}],
"generalPractitioner":[{"reference":"Practitioner/example","display":"Dr Adam Careful"}],
"managingOrganization":{"reference":"Organization/1","display":"ACME Healthcare, Inc"},
"link":[{"other":{"reference":"Patient/pat2"},"type":"seealso"}]})json";
  return p;
}

void Run(const char* label, const char* text, const fp::Context& context, double seconds) {
  auto compiled = fp::Expression::Compile(text);
  if (auto* e = std::get_if<fp::SyntaxError>(&compiled)) {
    std::printf("%s: syntax error: %s\n", label, e->message.c_str());
    return;
  }
  const auto& expression = std::get<fp::Expression>(compiled);
  fp::Evaluator evaluator;
  bool verdict = false;
  for (int i = 0; i < 1000; ++i)
    verdict = std::get<bool>(evaluator.EvaluatesToTrue(expression, context));
  // Thread CPU time, not wall time: the figure is per core even on a busy machine.
  auto cpu_seconds = [] {
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
  };
  const double start = cpu_seconds();
  unsigned long long evaluations = 0;
  const unsigned long long allocations_before = g_allocations.load();
  double elapsed = 0;
  while ((elapsed = cpu_seconds() - start) < seconds) {
    for (int i = 0; i < 1000; ++i) {
      auto r = evaluator.EvaluatesToTrue(expression, context);
      verdict ^= std::get<bool>(r);
    }
    evaluations += 1000;
  }
  const double allocations =
      double(g_allocations.load() - allocations_before) / double(evaluations);
  std::printf("%-16s %12.0f eval/s  %5.2f allocs/eval  %s\n", label, evaluations / elapsed,
              allocations, text);
  if (verdict && evaluations == 0) std::puts("");  // keep the result alive
}

}  // namespace

int main(int argc, char** argv) {
  const double seconds = argc > 1 ? std::atof(argv[1]) : 1.0;
  const std::string only = argc > 2 ? argv[2] : "";
  const std::string current_json = MakePatient("1974-12-25", true);
  const std::string previous_json = MakePatient("1974-12-24", false);
  simdjson::dom::parser current_parser, previous_parser;
  simdjson::dom::element current, previous;
  if (current_parser.parse(current_json).get(current) ||
      previous_parser.parse(previous_json).get(previous)) {
    std::puts("bad benchmark document");
    return 1;
  }
  std::printf("Patient document: %zu bytes\n", current_json.size());
  fp::Context context(current);
  context.current = current;
  context.previous = previous;
  if (only.empty() || only == "exists") Run("exists", "name.exists()", context, seconds);
  if (only.empty() || only == "where")
    Run("where", "identifier.where(system.contains('patient-portal')).exists()", context, seconds);
  if (only.empty() || only == "where-and")
    Run("where-and", "telecom.where(system = 'phone' and use = 'mobile').exists()", context,
        seconds);
  if (only.empty() || only == "current/previous")
    Run("current/previous", "%current.birthDate != %previous.birthDate", context, seconds);
  if (only.empty() || only == "transition")
    Run("transition", "%previous.active = false and %current.active = true", context, seconds);
  return 0;
}
