// FHIRPath (N1) over FHIR JSON held in simdjson DOM documents: compile an expression once, then
// evaluate it many times. Evaluation never copies the resource and never throws: failures come
// back as EvalError values. Compiled Expressions are immutable and may be shared across threads;
// an Evaluator is single-threaded and reuses its scratch memory from call to call.
#pragma once

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "topicbridge/fhirpath_value.h"

namespace topicbridge::fhirpath {

struct Ast;

// Why a text is not a FHIRPath expression. position is the 0-based byte offset of the offending
// token; column is position + 1 (expressions are single-line).
struct SyntaxError {
  std::size_t position = 0;
  std::size_t column = 1;
  std::string message;
};

// Why an evaluation failed (e.g. "not() requires a singleton, got 2 items").
struct EvalError {
  std::string message;
};

// A compiled expression. Cheap to copy (shares the immutable syntax tree).
class Expression {
 public:
  static std::variant<Expression, SyntaxError> Compile(std::string_view text);

  const std::string& text() const;
  const Ast& ast() const { return *ast_; }

 private:
  friend class Evaluator;  // keeps the tree alive while results point into its literals
  explicit Expression(std::shared_ptr<const Ast> ast) : ast_(std::move(ast)) {}
  std::shared_ptr<const Ast> ast_;
};

// Looks up a reference for resolve(). Implementations map "Type/id" (or an absolute URL) to a
// resource, or nullopt. The returned element must stay valid as long as the result of the
// evaluation that asked for it is used (resolved resources can be part of the result).
class Resolver {
 public:
  virtual ~Resolver() = default;
  virtual std::optional<simdjson::dom::element> Resolve(std::string_view reference) = 0;
};

// What an expression is evaluated against. Elements are borrowed: the documents behind them must
// outlive the evaluation and its result.
class Context {
 public:
  Context() = default;
  explicit Context(simdjson::dom::element resource) : resource(resource) {}
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  Context(Context&&) = default;
  Context& operator=(Context&&) = default;

  // %resource, and $this at the start of the expression. Absent: evaluation starts on empty.
  std::optional<simdjson::dom::element> resource;
  // %context; defaults to the resource.
  std::optional<simdjson::dom::element> context;
  // %current / %previous (subscription criteria). Absent evaluates to the empty collection.
  std::optional<simdjson::dom::element> current;
  std::optional<simdjson::dom::element> previous;
  // resolve() looks in %resource's contained resources and Bundle entries first, then asks
  // this; null means only those.
  Resolver* resolver = nullptr;
  // Receives trace(name[, projection]) calls; unset, trace() only passes its input through.
  std::function<void(std::string_view name, std::span<const Value> values)> trace;
  // Type nodes with the FHIR R4 model (choice types, ofType(Quantity), FHIR primitive types).
  // False evaluates over untyped JSON.
  bool typed = true;

  // %name bound to a JSON value (an array binds a collection, null binds empty).
  void SetVariable(std::string name, simdjson::dom::element value);
  // Parses json and keeps the parsed document inside this Context. False on invalid JSON.
  bool SetVariableJson(std::string name, std::string_view json);
  const simdjson::dom::element* FindVariable(std::string_view name) const;

 private:
  std::map<std::string, simdjson::dom::element, std::less<>> variables_;
  std::vector<std::unique_ptr<simdjson::dom::parser>> owned_documents_;
};

// Either a result collection or an error. The values borrow from the Evaluator that produced
// them (which also keeps the Expression's literals alive) and from the context's documents:
// valid until the next Evaluate on that Evaluator, as long as those documents live.
class EvalResult {
 public:
  bool ok() const { return !error_.has_value(); }
  const EvalError& error() const { return *error_; }
  std::span<const Value> values() const { return values_; }

 private:
  friend class Evaluator;
  std::optional<EvalError> error_;
  std::span<const Value> values_;
};

class EvaluatorState;

// Evaluates expressions. Not thread-safe; use one per thread. Reuses its memory across calls,
// so evaluating simple path criteria does not allocate once warm.
class Evaluator {
 public:
  Evaluator();
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;

  EvalResult Evaluate(const Expression& expression, const Context& context);
  // Subscription criteria: empty is false; one Boolean is itself; one other item is true
  // (FHIRPath singleton evaluation); several items, or a failed evaluation, are an EvalError.
  // Never throws.
  std::variant<bool, EvalError> EvaluatesToTrue(const Expression& expression,
                                                const Context& context);

 private:
  std::unique_ptr<EvaluatorState> state_;
  std::shared_ptr<const Ast> last_expression_;  // the tree the current results may point into
};

// Convenience forms using a thread-local Evaluator (results valid until the next call on the
// same thread).
EvalResult Evaluate(const Expression& expression, const Context& context);
std::variant<bool, EvalError> EvaluatesToTrue(const Expression& expression, const Context& context);

// One JSON array line, values written as the HL7 conformance `result:` lists write them:
// elements as their JSON, dates/times as strings without '@', computed Quantities as
// "2 'mo'" / "7 days", Integer and Decimal as numbers.
std::string PrintResultJson(std::span<const Value> values);

}  // namespace topicbridge::fhirpath
