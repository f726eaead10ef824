// Fuzzes FHIRPath evaluation. Input: an expression, a newline, then a JSON resource. Whatever the
// expression and resource, evaluation must return values or an EvalError, never crash; results
// are printed so every returned value is read.
#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <variant>

#include "topicbridge/fhirpath.h"

namespace fhirpath = topicbridge::fhirpath;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::size_t newline = input.find('\n');
  if (newline == std::string_view::npos) return 0;
  auto compiled = fhirpath::Expression::Compile(input.substr(0, newline));
  auto* expression = std::get_if<fhirpath::Expression>(&compiled);
  if (expression == nullptr) return 0;

  static simdjson::dom::parser parser;
  simdjson::padded_string json(input.substr(newline + 1));
  simdjson::dom::element resource;
  if (parser.parse(json).get(resource) != simdjson::SUCCESS) return 0;

  static fhirpath::Evaluator evaluator;
  fhirpath::Context context(resource);
  fhirpath::EvalResult result = evaluator.Evaluate(*expression, context);
  if (result.ok()) (void)fhirpath::PrintResultJson(result.values());
  (void)evaluator.EvaluatesToTrue(*expression, context);
  return 0;
}
