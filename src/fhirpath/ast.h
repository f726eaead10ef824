// The compiled form of a FHIRPath expression: an immutable tree of AstNodes owned by one Ast.
// Names that navigation needs ("given" and its primitive sibling "_given") are precomputed here
// so evaluation builds no strings.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "topicbridge/fhirpath_value.h"

namespace topicbridge::fhirpath {

enum class NodeKind : std::uint8_t {
  kLiteral,   // literal (value)
  kEmpty,     // {}
  kMember,    // [receiver.]name
  kFunction,  // [receiver.]name(args)
  kIndexer,   // receiver[args[0]]
  kUnary,     // op receiver
  kBinary,    // receiver op args[0]
  kTypeTest,  // receiver is/as type_name
  kVariable,  // %name
  kThis,      // $this
  kIndex,     // $index
  kTotal,     // $total
};

enum class BinaryOp : std::uint8_t {
  kNone,
  kImplies,
  kOr,
  kXor,
  kAnd,
  kIn,
  kContains,
  kEqual,
  kNotEqual,
  kEquivalent,
  kNotEquivalent,
  kLess,
  kGreater,
  kLessOrEqual,
  kGreaterOrEqual,
  kUnion,
  kIs,
  kAs,
  kPlus,
  kMinus,
  kConcat,
  kTimes,
  kDivide,
  kDiv,
  kMod,
};

enum class Function : std::uint8_t;  // functions.h

struct AstNode {
  NodeKind kind = NodeKind::kLiteral;
  BinaryOp op = BinaryOp::kNone;  // kBinary, kTypeTest, kUnary (kPlus/kMinus)
  Function function{};
  std::uint32_t position = 0;         // byte offset in the text
  std::string_view name;              // member/function/variable name; type name for kTypeTest
  std::string_view sibling;           // "_" + name, for primitive extensions
  const AstNode* receiver = nullptr;  // null: the focus of the enclosing scope
  std::vector<const AstNode*> args;
  Value literal;
};

struct Ast {
  std::string text;
  const AstNode* root = nullptr;
  std::deque<AstNode> nodes;
  std::deque<std::string> strings;  // storage for names, string literals and units
};

}  // namespace topicbridge::fhirpath
