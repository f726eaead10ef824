// Runs the HL7 fhirpath.js conformance cases (shared/conformance/fhirpath/cases/*.yaml) against
// the engine, prints the pass rate per suite and overall, and fails when a case fails that
// tests/conformance/known_failures.txt does not list. Exit 77 (skip) when shared/ is absent.
//
// Usage: fhirpath_conformance SHARED_DIR KNOWN_FAILURES [--write-known] [--verbose] [--only FILE]
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "topicbridge/fhirpath.h"
#include "topicbridge/json_writer.h"

namespace fs = std::filesystem;
namespace fp = topicbridge::fhirpath;

namespace {

void AppendJsonString(std::string& out, const std::string& s) {
  out += '"';
  topicbridge::JsonWriter::AppendEscaped(&out, s);
  out += '"';
}

// YAML (core schema for plain scalars) -> JSON text.
void YamlToJson(const YAML::Node& n, std::string& out) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      out += "null";
      return;
    case YAML::NodeType::Sequence: {
      out += '[';
      bool first = true;
      for (const auto& item : n) {
        if (!first) out += ',';
        first = false;
        YamlToJson(item, out);
      }
      out += ']';
      return;
    }
    case YAML::NodeType::Map: {
      out += '{';
      bool first = true;
      for (const auto& kv : n) {
        if (!first) out += ',';
        first = false;
        AppendJsonString(out, kv.first.as<std::string>());
        out += ':';
        YamlToJson(kv.second, out);
      }
      out += '}';
      return;
    }
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (n.Tag() == "?") {
        if (s == "true" || s == "True" || s == "TRUE") return void(out += "true");
        if (s == "false" || s == "False" || s == "FALSE") return void(out += "false");
        if (s == "null" || s == "~" || s == "Null" || s.empty()) return void(out += "null");
        char* end = nullptr;
        if (!s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '-' ||
                           s[0] == '+' || s[0] == '.')) {
          std::strtod(s.c_str(), &end);
          if (end && *end == '\0' && s != "-" && s != "+" && s != ".") {
            out += s[0] == '+' ? s.substr(1) : s;
            return;
          }
        }
      }
      AppendJsonString(out, s);
      return;
    }
  }
}

bool JsonEqual(simdjson::dom::element a, simdjson::dom::element b) {
  using T = simdjson::dom::element_type;
  auto is_num = [](T t) { return t == T::INT64 || t == T::UINT64 || t == T::DOUBLE; };
  if (is_num(a.type()) && is_num(b.type())) {
    double x = 0, y = 0;
    if (a.get(x) || b.get(y)) return false;
    return x == y || std::fabs(x - y) <= 1e-9 * std::max(1.0, std::fabs(x));
  }
  if (a.type() != b.type()) return false;
  switch (a.type()) {
    case T::STRING:
      return a.get_string().value_unsafe() == b.get_string().value_unsafe();
    case T::BOOL:
      return a.get_bool().value_unsafe() == b.get_bool().value_unsafe();
    case T::NULL_VALUE:
      return true;
    case T::ARRAY: {
      auto x = a.get_array().value_unsafe(), y = b.get_array().value_unsafe();
      if (x.size() != y.size()) return false;
      auto it = y.begin();
      for (auto e : x) {
        if (!JsonEqual(e, *it)) return false;
        ++it;
      }
      return true;
    }
    case T::OBJECT: {
      auto x = a.get_object().value_unsafe(), y = b.get_object().value_unsafe();
      if (x.size() != y.size()) return false;
      for (auto f : x) {
        simdjson::dom::element o;
        if (y.at_key(f.key).get(o) || !JsonEqual(f.value, o)) return false;
      }
      return true;
    }
    default:
      return false;
  }
}

struct Outcome {
  bool pass = false;
  std::string detail;
};

class Runner {
 public:
  explicit Runner(fs::path base) : base_(std::move(base)) {}

  // Returns the resource element for an input file (parsed once, kept for the run).
  simdjson::dom::element Resource(const std::string& name) {
    auto it = resources_.find(name);
    if (it != resources_.end()) return it->second.second;
    auto parser = std::make_unique<simdjson::dom::parser>();
    simdjson::dom::element e;
    auto path = base_ / "resources" / name;
    if (parser->load(path.string()).get(e))
      throw std::runtime_error("cannot load " + path.string());
    auto& slot = resources_[name];
    slot.first = std::move(parser);
    slot.second = e;
    return e;
  }

  Outcome Run(const YAML::Node& test, const std::string& expression, simdjson::dom::element subject,
              bool has_subject) {
    const YAML::Node err = test["error"];
    bool expect_error = err && ((err.IsScalar() && err.as<bool>()) ||
                                (err.IsSequence() && err.size() > 0 && err[0].as<bool>()));
    auto compiled = fp::Expression::Compile(expression);
    if (auto* err = std::get_if<fp::SyntaxError>(&compiled)) {
      return {expect_error,
              "syntax error at " + std::to_string(err->position) + ": " + err->message};
    }
    const auto& expr = std::get<fp::Expression>(compiled);
    fp::Context ctx;
    if (test["inputfile"]) {
      ctx.resource = Resource(test["inputfile"].as<std::string>());
    } else if (has_subject) {
      ctx.resource = subject;
    }
    ctx.typed = static_cast<bool>(test["model"]);
    if (test["variables"]) {
      for (const auto& kv : test["variables"]) {
        std::string json;
        YamlToJson(kv.second, json);
        ctx.SetVariableJson(kv.first.as<std::string>(), json);
      }
    }
    fp::Evaluator evaluator;
    if (test["context"]) {
      auto c = fp::Expression::Compile(test["context"].as<std::string>());
      if (auto* e = std::get_if<fp::Expression>(&c)) {
        auto r = evaluator.Evaluate(*e, ctx);
        if (r.ok() && !r.values().empty() && r.values()[0].kind == fp::ValueKind::kNode)
          ctx.context = r.values()[0].element;
      }
    }
    auto result = evaluator.Evaluate(expr, ctx);
    if (!result.ok()) return {expect_error, "eval error: " + result.error().message};
    std::string actual = fp::PrintResultJson(result.values());
    if (expect_error) return {false, "expected an error, got " + actual};
    std::string expected;
    YamlToJson(test["result"], expected);
    simdjson::dom::parser pa, pe;
    simdjson::dom::element ea, ee;
    if (pa.parse(actual).get(ea)) return {false, "unparsable output " + actual};
    if (pe.parse(expected).get(ee)) return {false, "unparsable expectation " + expected};
    if (JsonEqual(ea, ee)) return {true, ""};
    return {false, "expected " + expected + " got " + actual};
  }

 private:
  fs::path base_;
  std::map<std::string, std::pair<std::unique_ptr<simdjson::dom::parser>, simdjson::dom::element>>
      resources_;
};

struct Case {
  std::string suite;
  std::string expression;
  Outcome outcome;
};

bool IsGroup(const YAML::Node& n, YAML::Node* body) {
  if (!n.IsMap()) return false;
  for (const auto& kv : n) {
    std::string key = kv.first.as<std::string>();
    if (key.rfind("group", 0) == 0) {
      *body = kv.second;
      return true;
    }
  }
  return false;
}

void Walk(Runner& runner, const YAML::Node& tests, const std::string& suite,
          simdjson::dom::element subject, bool has_subject, std::vector<Case>& out) {
  if (!tests || !tests.IsSequence()) return;
  for (const auto& t : tests) {
    if (t["disable"] && t["disable"].as<bool>()) continue;
    YAML::Node body;
    if (IsGroup(t, &body)) {
      Walk(runner, body, suite, subject, has_subject, out);
      continue;
    }
    if (!t["expression"]) continue;
    std::vector<std::string> expressions;
    if (t["expression"].IsSequence()) {
      for (const auto& e : t["expression"]) expressions.push_back(e.as<std::string>());
    } else if (t["expression"].IsMap()) {  // {base: <type path>, expression: ...}
      expressions.push_back(t["expression"]["expression"].as<std::string>());
    } else {
      expressions.push_back(t["expression"].as<std::string>());
    }
    for (const auto& e : expressions) {
      Outcome o;
      try {
        o = runner.Run(t, e, subject, has_subject);
      } catch (const std::exception& ex) {
        o = {false, std::string("exception: ") + ex.what()};
      }
      out.push_back({suite, e, o});
    }
  }
}

std::string OneLine(std::string s) {
  for (char& c : s) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr
        << "usage: fhirpath_conformance SHARED_DIR KNOWN_FAILURES [--write-known] [--verbose]\n";
    return 2;
  }
  fs::path base = fs::path(argv[1]) / "conformance" / "fhirpath";
  std::string known_path = argv[2];
  bool write_known = false, verbose = false;
  std::string only;
  for (int i = 3; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--write-known")
      write_known = true;
    else if (a == "--verbose")
      verbose = true;
    else if (a == "--only" && i + 1 < argc)
      only = argv[++i];
  }
  if (!fs::is_directory(base / "cases")) {
    std::cout << "SKIP: no conformance cases at " << (base / "cases").string() << "\n";
    return 77;
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(base / "cases")) {
    if (entry.path().extension() == ".yaml") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());

  Runner runner(base);
  std::vector<Case> cases;
  for (const auto& file : files) {
    std::string suite = file.stem().string();
    if (!only.empty() && suite != only) continue;
    YAML::Node doc = YAML::LoadFile(file.string());
    std::string subject_json;
    bool has_subject = static_cast<bool>(doc["subject"]);
    if (has_subject) YamlToJson(doc["subject"], subject_json);
    simdjson::dom::parser parser;
    simdjson::dom::element subject;
    if (has_subject && parser.parse(subject_json).get(subject)) has_subject = false;
    Walk(runner, doc["tests"], suite, subject, has_subject, cases);
  }

  std::set<std::pair<std::string, std::string>> known;
  std::ifstream kf(known_path);
  for (std::string line; std::getline(kf, line);) {
    if (line.empty() || line[0] == '#') continue;
    auto t1 = line.find('\t');
    auto t2 = line.find('\t', t1 + 1);
    if (t1 == std::string::npos) continue;
    known.insert({line.substr(0, t1),
                  line.substr(t1 + 1, t2 == std::string::npos ? std::string::npos : t2 - t1 - 1)});
  }

  std::map<std::string, std::pair<int, int>> per_suite;
  int passed = 0, unexpected = 0, fixed = 0;
  for (const auto& c : cases) {
    auto& s = per_suite[c.suite];
    ++s.second;
    bool listed = known.count({c.suite, OneLine(c.expression)}) > 0;
    if (c.outcome.pass) {
      ++s.first, ++passed;
      if (listed) ++fixed;
      continue;
    }
    if (write_known) {
      std::cout << c.suite << '\t' << OneLine(c.expression) << '\t' << OneLine(c.outcome.detail)
                << "\n";
    } else if (!listed) {
      ++unexpected;
      std::cout << "UNEXPECTED FAILURE " << c.suite << ": " << c.expression << "\n    "
                << c.outcome.detail << "\n";
    } else if (verbose) {
      std::cout << "known failure " << c.suite << ": " << c.expression << "\n    "
                << c.outcome.detail << "\n";
    }
  }
  if (write_known) return 0;
  for (const auto& [suite, s] : per_suite) {
    std::printf("%-32s %4d/%-4d %6.1f%%\n", suite.c_str(), s.first, s.second,
                100.0 * s.first / s.second);
  }
  std::printf("%-32s %4d/%-4zu %6.1f%%\n", "overall", passed, cases.size(),
              100.0 * passed / cases.size());
  if (fixed)
    std::printf("%d case(s) listed in known_failures.txt now pass: update the list\n", fixed);
  if (unexpected) {
    std::printf("%d unexpected failure(s)\n", unexpected);
    return 1;
  }
  return 0;
}
