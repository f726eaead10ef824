// Internal state of an Evaluator: scratch collections and a string arena reused across calls,
// plus the tree-walking evaluation itself (evaluator.cpp), operators (operators.cpp) and the
// function library (functions.cpp). Evaluation errors are raised as EvalFailure and turned into
// EvalError values at the public boundary.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ast.h"
#include "model.h"
#include "topicbridge/fhirpath.h"

namespace topicbridge::fhirpath {

using Collection = std::vector<Value>;

struct EvalFailure {
  std::string message;
};

[[noreturn]] void Fail(std::string message);

struct Scope {
  const Collection* focus = nullptr;  // input of identifiers without a receiver
  const Value* this_value = nullptr;  // $this (null: the focus at the top level)
  std::int64_t index = 0;
  const Collection* total = nullptr;  // $total inside aggregate()
};

class EvaluatorState;

// One function call being evaluated: its node, scope, input and output, and the argument
// helpers the functions share. Arguments evaluate against the caller's scope; lambdas get the
// item as $this and as their focus.
struct Invocation {
  EvaluatorState& state;
  const AstNode* node;
  const Scope& scope;
  const Collection& in;
  Collection& out;

  void Arg(std::size_t i, Collection& into) const;
  void Lambda(const AstNode* body, const Value& item, std::int64_t index, const Collection* total,
              Collection& into) const;
  // Null when c is empty; fails when it has more than one item.
  const Value* Single(const Collection& c, const char* what) const;
  // The input (or argument i) as one system value; nullopt when empty or value-less.
  std::optional<Value> InputValue(const char* what) const;
  std::optional<std::string_view> InputString() const;
  std::optional<Value> ArgValue(std::size_t i, Collection& tmp) const;
  std::optional<std::string_view> ArgString(std::size_t i, Collection& tmp) const;
  std::optional<std::int64_t> ArgInteger(std::size_t i, Collection& tmp) const;
  void PushBool(bool b) const;
  void PushString(std::string_view s) const;
};

class EvaluatorState {
 public:
  EvaluatorState();

  // Evaluation entry: fills result or throws EvalFailure.
  void Run(const Ast& ast, const Context& context);
  const Collection& result() const { return result_; }

  // Collections borrowed for the duration of one step; returned on destruction.
  class Temp {
   public:
    explicit Temp(EvaluatorState& s) : s_(s), c_(s.Acquire()) {}
    ~Temp() { s_.Release(c_); }
    Temp(const Temp&) = delete;
    Temp& operator=(const Temp&) = delete;
    Collection& operator*() { return *c_; }
    Collection* operator->() { return c_; }

   private:
    EvaluatorState& s_;
    Collection* c_;
  };

  void Eval(const AstNode* n, const Scope& scope, Collection& out);
  std::string_view Store(std::string_view s);
  const Model& model() const { return model_; }
  const Context& context() const { return *context_; }

  // --- navigation and typing (evaluator.cpp)
  Value MakeNode(simdjson::dom::element e, std::int32_t type, std::int32_t node) const;
  Value MakeResourceNode(simdjson::dom::element e) const;
  void AppendChildren(const Value& item, std::string_view name, std::string_view sibling,
                      Collection& out) const;
  void AppendJsonValue(simdjson::dom::element e, Collection& out) const;  // variables
  void AllChildren(const Value& item, Collection& out) const;
  // The system value of a primitive node (or the value itself); false when it has none.
  bool ToSystem(const Value& v, Value& out) const;
  std::string_view TypeName(const Value& v, std::string_view* ns) const;
  bool IsType(const Value& v, std::string_view spec) const;

  // --- operators (operators.cpp)
  void Binary(const AstNode* n, const Scope& scope, Collection& out);
  void BooleanOperator(BinaryOp op, const Collection& l, const Collection& r, Collection& out);
  void Comparison(BinaryOp op, const Collection& l, const Collection& r, Collection& out);
  std::optional<bool> Equal(const Value& a, const Value& b);
  bool Equivalent(const Value& a, const Value& b);
  bool JsonEquivalent(simdjson::dom::element a, simdjson::dom::element b);
  // comparable(): both Quantities (or numbers) in units of one dimension.
  bool QuantitiesComparable(const Value& a, const Value& b) const;
  std::optional<bool> CollectionsEqual(const Collection& a, const Collection& b);
  bool CollectionsEquivalent(const Collection& a, const Collection& b);
  std::optional<int> Compare(const Value& a, const Value& b);  // nullopt: empty result
  std::optional<int> CompareSystem(Value x, Value y);          // both already system values
  bool Contains(const Collection& c, const Value& v);
  void Arithmetic(BinaryOp op, const Value& a, const Value& b, Collection& out);
  void NumberArithmetic(BinaryOp op, const Value& x, const Value& y, Collection& out);
  void TemporalArithmetic(BinaryOp op, const Value& x, const Value& y, Collection& out);
  void QuantityArithmetic(BinaryOp op, Value x, Value y, Collection& out);
  void QuantitySum(BinaryOp op, const Value& x, const Value& y, Collection& out);
  void QuantityProduct(BinaryOp op, const Value& x, const Value& y, Collection& out);
  // Singleton boolean evaluation: nullopt for empty; throws for many items. A single
  // non-Boolean is true, or nullopt when strict (and/or/xor/implies operands).
  std::optional<bool> AsBoolean(const Collection& c, std::string_view what, bool strict = false);
  // where()/exists()/all() criteria: a single Boolean is itself; empty is false; else true.
  bool CriteriaTrue(const Collection& c);

  // --- functions (functions.cpp, conversions.cpp), by group of the specification
  void Call(const AstNode* n, const Scope& scope, Collection& out);
  void Existence(const Invocation& call);
  void Filtering(const Invocation& call);
  void Subsetting(const Invocation& call);
  void Strings(const Invocation& call);
  void StringPatterns(const Invocation& call);
  void StringCodecs(const Invocation& call);
  void Utility(const Invocation& call);
  void Aggregates(const Invocation& call);
  void TypesAndFhir(const Invocation& call);
  void Convert(const AstNode* n, const Scope& scope, const Collection& in, Collection& out);
  std::optional<Value> ToStringValue(const Value& v);
  std::optional<Value> ToQuantityValue(const AstNode* n, const Scope& scope, const Value& v);
  void Math(const AstNode* n, const Scope& scope, const Collection& in, Collection& out);
  void Resolve(const Value& v, Collection& out);

  // --- %factory (factory.cpp)
  void Factory(const AstNode* n, const Scope& scope, Collection& out);
  std::string JsonOf(const Value& v, std::string* fhir_type);
  // Parses json into a document owned until the next Run.
  simdjson::dom::element ParseOwned(const std::string& json);

 private:
  Collection* Acquire();
  void Release(Collection* c);
  void Variable(const AstNode* n, Collection& out);

  const Model& model_;
  const Context* context_ = nullptr;
  // now(), today() and timeOfDay() read the clock once per Run: the specification gives them
  // the same value however often one expression calls them.
  std::optional<Temporal> now_;
  Collection result_;
  Collection root_;
  std::vector<std::unique_ptr<Collection>> all_;
  std::vector<Collection*> free_;
  std::vector<std::unique_ptr<std::string>> strings_;
  std::size_t strings_used_ = 0;
  std::vector<std::unique_ptr<simdjson::dom::parser>> documents_;
  std::size_t documents_used_ = 0;
};

// Helpers shared by operators and functions.
inline void IgnoreError(simdjson::error_code) {}  // lookups whose default value is fine
std::string FormatDecimal(double d);
std::string QuantityText(const Value& q);
void AppendJsonString(std::string& out, std::string_view s);  // "2 'mo'", "7 days"
bool IsNumber(const Value& v);
double NumberOf(const Value& v);
Value MakeBoolean(bool b);
Value MakeInteger(std::int64_t i);
Value MakeDecimal(double d);
Value MakeString(std::string_view s);

}  // namespace topicbridge::fhirpath
