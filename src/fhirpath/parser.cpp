// Lexer and precedence-climbing parser: FHIRPath text -> Ast. Errors carry the byte offset of
// the offending token.
#include <charconv>
#include <cstring>

#include "ast.h"
#include "functions.h"
#include "temporal.h"
#include "topicbridge/fhirpath.h"

namespace topicbridge::fhirpath {
namespace {

enum class Tok : std::uint8_t {
  kEnd,
  kIdentifier,
  kQuotedIdentifier,
  kString,
  kNumber,
  kLong,
  kTemporal,
  kVariable,
  kSpecial,  // $this $index $total
  kSymbol,
};

struct Token {
  Tok kind = Tok::kEnd;
  std::uint32_t position = 0;
  std::string_view text;  // raw text (for symbols, identifiers, numbers)
  std::string value;      // decoded string / identifier / variable name
};

struct ParseFailure {
  std::uint32_t position;
  std::string message;
};

bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

class Lexer {
 public:
  explicit Lexer(std::string_view text) : s_(text) {}

  Token Next() {
    SkipSpaceAndComments();
    Token t;
    t.position = static_cast<std::uint32_t>(i_);
    if (i_ >= s_.size()) return t;
    char c = s_[i_];
    if (IsIdentStart(c)) {
      std::size_t b = i_;
      while (i_ < s_.size() && (IsIdentStart(s_[i_]) || IsDigit(s_[i_]))) ++i_;
      t.kind = Tok::kIdentifier;
      t.text = s_.substr(b, i_ - b);
      t.value = std::string(t.text);
    } else if (c == '`') {
      t.kind = Tok::kQuotedIdentifier;
      t.value = Quoted('`', t.position);
      t.text = s_.substr(t.position, i_ - t.position);
    } else if (c == '\'') {
      t.kind = Tok::kString;
      t.value = Quoted('\'', t.position);
      t.text = s_.substr(t.position, i_ - t.position);
    } else if (IsDigit(c)) {
      std::size_t b = i_;
      while (i_ < s_.size() && IsDigit(s_[i_])) ++i_;
      if (i_ + 1 < s_.size() && s_[i_] == '.' && IsDigit(s_[i_ + 1])) {
        ++i_;
        while (i_ < s_.size() && IsDigit(s_[i_])) ++i_;
      }
      t.kind = Tok::kNumber;
      t.text = s_.substr(b, i_ - b);
      if (i_ < s_.size() && s_[i_] == 'L') {
        ++i_;
        t.kind = Tok::kLong;
      }
    } else if (c == '@') {
      std::size_t b = ++i_;
      while (i_ < s_.size() && (IsDigit(s_[i_]) || (s_[i_] && std::strchr("-:TZ+", s_[i_])) ||
                                (s_[i_] == '.' && i_ + 1 < s_.size() && IsDigit(s_[i_ + 1]))))
        ++i_;
      t.kind = Tok::kTemporal;
      t.text = s_.substr(b, i_ - b);
    } else if (c == '%') {
      ++i_;
      t.kind = Tok::kVariable;
      if (i_ < s_.size() && (s_[i_] == '`' || s_[i_] == '\'')) {
        t.value = Quoted(s_[i_], t.position);
      } else {
        std::size_t b = i_;
        while (i_ < s_.size() && (IsIdentStart(s_[i_]) || IsDigit(s_[i_]))) ++i_;
        if (b == i_) throw ParseFailure{t.position, "expected a variable name after '%'"};
        t.value = std::string(s_.substr(b, i_ - b));
      }
    } else if (c == '$') {
      std::size_t b = ++i_;
      while (i_ < s_.size() && IsIdentStart(s_[i_])) ++i_;
      t.kind = Tok::kSpecial;
      t.value = std::string(s_.substr(b, i_ - b));
      if (t.value != "this" && t.value != "index" && t.value != "total")
        throw ParseFailure{t.position, "unknown special variable '$" + t.value + "'"};
    } else {
      static constexpr std::string_view kTwo[] = {"<=", ">=", "!=", "!~"};
      t.kind = Tok::kSymbol;
      for (auto two : kTwo) {
        if (s_.substr(i_, 2) == two) {
          t.text = two;
          i_ += 2;
          return t;
        }
      }
      if (!std::strchr(".[](),+-*/&|=~<>{}", c))
        throw ParseFailure{t.position, std::string("unexpected character '") + c + "'"};
      t.text = s_.substr(i_++, 1);
    }
    return t;
  }

 private:
  void SkipSpaceAndComments() {
    for (;;) {
      while (i_ < s_.size() && std::strchr(" \t\r\n", s_[i_]) && s_[i_]) ++i_;
      if (s_.substr(i_, 2) == "//") {
        while (i_ < s_.size() && s_[i_] != '\n') ++i_;
      } else if (s_.substr(i_, 2) == "/*") {
        std::size_t end = s_.find("*/", i_ + 2);
        if (end == std::string_view::npos)
          throw ParseFailure{static_cast<std::uint32_t>(i_), "unterminated comment"};
        i_ = end + 2;
      } else {
        return;
      }
    }
  }

  std::string Quoted(char quote, std::uint32_t start) {
    std::string out;
    ++i_;
    while (i_ < s_.size() && s_[i_] != quote) {
      char c = s_[i_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (i_ >= s_.size()) break;
      char e = s_[i_++];
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u': {
          unsigned cp = 0;
          auto r = std::from_chars(s_.data() + i_, s_.data() + std::min(i_ + 4, s_.size()), cp, 16);
          if (r.ptr != s_.data() + i_ + 4) {
            out += 'u';  // as fhirpath.js: a malformed escape keeps its text
            break;
          }
          i_ += 4;
          if (cp >= 0xD800 && cp < 0xDC00 && s_.substr(i_, 2) == "\\u") {
            unsigned low = 0;
            auto r2 = std::from_chars(s_.data() + i_ + 2, s_.data() + std::min(i_ + 6, s_.size()),
                                      low, 16);
            if (r2.ptr == s_.data() + i_ + 6 && low >= 0xDC00 && low < 0xE000) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
              i_ += 6;
            }
          }
          AppendUtf8(out, cp);
          break;
        }
        default:
          out += e;  // \\ \' \" \` \/
      }
    }
    if (i_ >= s_.size()) throw ParseFailure{start, "unterminated quoted text"};
    ++i_;
    return out;
  }

  static void AppendUtf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

struct OpInfo {
  std::string_view text;
  BinaryOp op;
  int precedence;
};

constexpr OpInfo kOps[] = {
    {"implies", BinaryOp::kImplies, 1}, {"or", BinaryOp::kOr, 2},
    {"xor", BinaryOp::kXor, 2},         {"and", BinaryOp::kAnd, 3},
    {"in", BinaryOp::kIn, 4},           {"contains", BinaryOp::kContains, 4},
    {"=", BinaryOp::kEqual, 5},         {"!=", BinaryOp::kNotEqual, 5},
    {"~", BinaryOp::kEquivalent, 5},    {"!~", BinaryOp::kNotEquivalent, 5},
    {"<", BinaryOp::kLess, 6},          {">", BinaryOp::kGreater, 6},
    {"<=", BinaryOp::kLessOrEqual, 6},  {">=", BinaryOp::kGreaterOrEqual, 6},
    {"|", BinaryOp::kUnion, 7},         {"is", BinaryOp::kIs, 8},
    {"as", BinaryOp::kAs, 8},           {"+", BinaryOp::kPlus, 9},
    {"-", BinaryOp::kMinus, 9},         {"&", BinaryOp::kConcat, 9},
    {"*", BinaryOp::kTimes, 10},        {"/", BinaryOp::kDivide, 10},
    {"div", BinaryOp::kDiv, 10},        {"mod", BinaryOp::kMod, 10},
};

constexpr std::string_view kCalendarUnits[] = {
    "year", "years", "month",  "months",  "week",   "weeks",   "day",         "days",
    "hour", "hours", "minute", "minutes", "second", "seconds", "millisecond", "milliseconds"};

class Parser {
 public:
  Parser(std::string_view text, Ast& ast) : lexer_(text), ast_(ast) { Advance(); }

  const AstNode* ParseAll() {
    const AstNode* root = ParseExpression(1);
    if (tok_.kind != Tok::kEnd) Fail("unexpected '" + std::string(TokenText()) + "'");
    CheckDepth(root);
    return root;
  }

 private:
  void Advance() { tok_ = lexer_.Next(); }
  [[noreturn]] void Fail(std::string message) {
    throw ParseFailure{tok_.position, std::move(message)};
  }
  std::string_view TokenText() const {
    return tok_.kind == Tok::kEnd ? std::string_view("end of expression") : tok_.text;
  }
  bool IsSymbol(std::string_view s) const { return tok_.kind == Tok::kSymbol && tok_.text == s; }
  void Expect(std::string_view s) {
    if (!IsSymbol(s))
      Fail("expected '" + std::string(s) + "' but found '" + std::string(TokenText()) + "'");
    Advance();
  }
  std::string_view Keep(std::string s) { return ast_.strings.emplace_back(std::move(s)); }
  AstNode* NewNode(NodeKind kind, std::uint32_t position) {
    AstNode& n = ast_.nodes.emplace_back();
    n.kind = kind;
    n.position = position;
    return &n;
  }

  const OpInfo* PeekBinary() const {
    if (tok_.kind != Tok::kSymbol && tok_.kind != Tok::kIdentifier) return nullptr;
    for (const auto& op : kOps) {
      if (op.text == tok_.text) return &op;
    }
    return nullptr;
  }

  const AstNode* ParseExpression(int min_precedence) {
    const AstNode* left = ParseUnary();
    for (const OpInfo* op = PeekBinary(); op && op->precedence >= min_precedence;
         op = PeekBinary()) {
      std::uint32_t pos = tok_.position;
      Advance();
      if (op->op == BinaryOp::kIs || op->op == BinaryOp::kAs) {
        AstNode* n = NewNode(NodeKind::kTypeTest, pos);
        n->op = op->op;
        n->receiver = left;
        n->name = ParseTypeSpecifier();
        left = n;
        continue;
      }
      AstNode* n = NewNode(NodeKind::kBinary, pos);
      n->op = op->op;
      n->receiver = left;
      n->args.push_back(ParseExpression(op->precedence + 1));
      left = n;
    }
    return left;
  }

  std::string_view ParseTypeSpecifier() {
    std::string name;
    for (;;) {
      if (tok_.kind != Tok::kIdentifier && tok_.kind != Tok::kQuotedIdentifier)
        Fail("expected a type name");
      name += tok_.value;
      Advance();
      if (!IsSymbol(".")) break;
      name += '.';
      Advance();
    }
    return Keep(std::move(name));
  }

  const AstNode* ParseUnary() {
    // Evaluation recurses along the tree: bound its depth so no expression can exhaust the stack.
    struct DepthGuard {
      int& depth;
      explicit DepthGuard(int& d) : depth(d) { ++depth; }
      ~DepthGuard() { --depth; }
    } guard(depth_);
    if (depth_ > kMaxDepth) Fail("expression nested too deeply");
    if (IsSymbol("-") || IsSymbol("+")) {
      AstNode* n = NewNode(NodeKind::kUnary, tok_.position);
      n->op = tok_.text == "-" ? BinaryOp::kMinus : BinaryOp::kPlus;
      Advance();
      n->receiver = ParseUnary();
      return n;
    }
    return ParsePostfix(ParseTerm());
  }

  const AstNode* ParsePostfix(const AstNode* left) {
    for (;;) {
      if (IsSymbol(".")) {
        Advance();
        left = ParseInvocation(left);
      } else if (IsSymbol("[")) {
        AstNode* n = NewNode(NodeKind::kIndexer, tok_.position);
        Advance();
        n->receiver = left;
        n->args.push_back(ParseExpression(1));
        Expect("]");
        left = n;
      } else {
        return left;
      }
    }
  }

  const AstNode* ParseInvocation(const AstNode* receiver) {
    std::uint32_t pos = tok_.position;
    if (tok_.kind == Tok::kSpecial) {
      AstNode* n = NewNode(tok_.value == "this"    ? NodeKind::kThis
                           : tok_.value == "index" ? NodeKind::kIndex
                                                   : NodeKind::kTotal,
                           pos);
      Advance();
      if (receiver)
        Fail("'$" + std::string(n->kind == NodeKind::kThis ? "this" : "index") +
             "' cannot follow '.'");
      return n;
    }
    if (tok_.kind != Tok::kIdentifier && tok_.kind != Tok::kQuotedIdentifier)
      Fail("expected an identifier but found '" + std::string(TokenText()) + "'");
    bool quoted = tok_.kind == Tok::kQuotedIdentifier;
    static constexpr std::string_view kReserved[] = {"and", "or", "xor", "implies", "div", "mod"};
    for (auto word : kReserved) {
      if (!quoted && tok_.text == word)
        Fail("'" + std::string(word) + "' is an operator; quote it as `" + std::string(word) +
             "` to use it as a name");
    }
    std::string name = tok_.value;
    Advance();
    if (!quoted && IsSymbol("(")) return ParseFunction(receiver, std::move(name), pos);
    AstNode* n = NewNode(NodeKind::kMember, pos);
    n->receiver = receiver;
    n->name = Keep(name);
    n->sibling = Keep("_" + name);
    return n;
  }

  const AstNode* ParseFunction(const AstNode* receiver, std::string name, std::uint32_t pos) {
    const FunctionInfo* info = FindFunction(name);
    if (!info) throw ParseFailure{pos, "unknown function '" + name + "'"};
    AstNode* n = NewNode(NodeKind::kFunction, pos);
    n->function = info->id;
    n->name = info->name;
    n->receiver = receiver;
    Advance();  // '('
    if (!IsSymbol(")")) {
      for (;;) {
        if (info->arg_kind == 2) {
          AstNode* t = NewNode(NodeKind::kMember, tok_.position);
          t->name = ParseTypeSpecifier();
          n->args.push_back(t);
        } else {
          n->args.push_back(ParseExpression(1));
        }
        if (!IsSymbol(",")) break;
        Advance();
      }
    }
    Expect(")");
    int count = static_cast<int>(n->args.size());
    if (count < info->min_args || count > info->max_args) {
      throw ParseFailure{
          pos, name + "() takes " + std::to_string(info->min_args) +
                   (info->max_args != info->min_args ? "-" + std::to_string(info->max_args) : "") +
                   " argument(s), got " + std::to_string(count)};
    }
    return n;
  }

  const AstNode* ParseTerm() {
    std::uint32_t pos = tok_.position;
    switch (tok_.kind) {
      case Tok::kEnd:
        Fail("unexpected end of expression");
      case Tok::kString: {
        AstNode* n = Literal(pos);
        n->literal.kind = ValueKind::kString;
        n->literal.text = Keep(tok_.value);
        Advance();
        return n;
      }
      case Tok::kNumber:
      case Tok::kLong:
        return ParseNumber();
      case Tok::kTemporal: {
        AstNode* n = Literal(pos);
        if (!ParseTemporalLiteral(tok_.text, n->literal))
          Fail("invalid date/time literal '@" + std::string(tok_.text) + "'");
        Advance();
        return n;
      }
      case Tok::kVariable: {
        AstNode* n = NewNode(NodeKind::kVariable, pos);
        n->name = Keep(tok_.value);
        Advance();
        return n;
      }
      case Tok::kSpecial:
      case Tok::kQuotedIdentifier:
        return ParseInvocation(nullptr);
      case Tok::kIdentifier:
        if (tok_.text == "true" || tok_.text == "false") {
          AstNode* n = Literal(pos);
          n->literal.kind = ValueKind::kBoolean;
          n->literal.boolean = tok_.text == "true";
          Advance();
          return n;
        }
        return ParseInvocation(nullptr);
      case Tok::kSymbol:
        if (IsSymbol("(")) {
          Advance();
          const AstNode* inner = ParseExpression(1);
          Expect(")");
          return inner;
        }
        if (IsSymbol("{")) {
          Advance();
          Expect("}");
          return NewNode(NodeKind::kEmpty, pos);
        }
        Fail("unexpected '" + std::string(tok_.text) + "'");
    }
    Fail("unexpected token");
  }

  AstNode* Literal(std::uint32_t pos) { return NewNode(NodeKind::kLiteral, pos); }

  const AstNode* ParseNumber() {
    AstNode* n = Literal(tok_.position);
    std::string_view text = tok_.text;
    bool is_long = tok_.kind == Tok::kLong;
    Value& v = n->literal;
    if (text.find('.') == std::string_view::npos) {
      v.kind = ValueKind::kInteger;
      v.boolean = is_long;
      auto r = std::from_chars(text.data(), text.data() + text.size(), v.integer);
      if (r.ec != std::errc()) Fail("integer literal out of range");
    } else {
      if (is_long) Fail("a Long literal cannot have a fractional part");
      v.kind = ValueKind::kDecimal;
      std::from_chars(text.data(), text.data() + text.size(), v.decimal);
      v.integer = static_cast<std::int64_t>(text.size() - text.find('.') - 1);  // scale
    }
    Advance();
    // A number followed by a unit is a Quantity.
    bool unit_string = tok_.kind == Tok::kString;
    bool unit_word = false;
    if (tok_.kind == Tok::kIdentifier) {
      for (auto u : kCalendarUnits) unit_word |= tok_.text == u;
    }
    if ((unit_string || unit_word) && !is_long) {
      double value = v.kind == ValueKind::kInteger ? static_cast<double>(v.integer) : v.decimal;
      v.integer = v.kind == ValueKind::kInteger ? 0 : v.integer;  // scale
      v.kind = ValueKind::kQuantity;
      v.decimal = value;
      v.unit = Keep(tok_.value);
      v.boolean = unit_string;  // quoted UCUM unit vs calendar keyword
      Advance();
    }
    return n;
  }

  // Evaluation recurses along the tree (long chains like a.b.c... too): bound the tree's depth.
  static void CheckDepth(const AstNode* root) {
    std::vector<std::pair<const AstNode*, int>> stack{{root, 1}};
    while (!stack.empty()) {
      auto [n, depth] = stack.back();
      stack.pop_back();
      if (depth > kMaxTreeDepth)
        throw ParseFailure{n->position, "expression too long or nested too deeply"};
      if (n->receiver) stack.emplace_back(n->receiver, depth + 1);
      for (const AstNode* a : n->args) stack.emplace_back(a, depth + 1);
    }
  }

  static constexpr int kMaxDepth = 200;
  static constexpr int kMaxTreeDepth = 1000;
  Lexer lexer_;
  Ast& ast_;
  Token tok_;
  int depth_ = 0;
};

}  // namespace

std::variant<Expression, SyntaxError> Expression::Compile(std::string_view text) {
  auto ast = std::make_shared<Ast>();
  ast->text = std::string(text);
  try {
    Parser parser(ast->text, *ast);
    ast->root = parser.ParseAll();
  } catch (const ParseFailure& f) {
    return SyntaxError{f.position, f.position + 1, f.message};
  } catch (const std::exception& e) {
    return SyntaxError{0, 1, e.what()};
  }
  return Expression(std::move(ast));
}

const std::string& Expression::text() const { return ast_->text; }

}  // namespace topicbridge::fhirpath
