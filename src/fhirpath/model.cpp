#include "model.h"

#include <algorithm>
#include <string>
#include <unordered_map>

namespace topicbridge::fhirpath {
namespace {
#include "fhir_model_r4.inc"

std::string_view NextWord(std::string_view& line) {
  size_t sp = line.find(' ');
  std::string_view w = line.substr(0, sp);
  line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  return w;
}
}  // namespace

const ModelField* ModelNode::Find(std::string_view name) const {
  auto it = std::lower_bound(fields.begin(), fields.end(), name,
                             [](const ModelField& f, std::string_view n) { return f.name < n; });
  return it != fields.end() && it->name == name ? &*it : nullptr;
}

const Model& Model::R4() {
  static const Model model;
  return model;
}

std::int32_t Model::FindType(std::string_view name) const {
  auto it = type_index_.find(name);
  return it == type_index_.end() ? -1 : it->second;
}

bool Model::IsA(std::int32_t type, std::int32_t ancestor) const {
  for (int guard = 0; type >= 0 && guard < 32; ++guard) {
    if (type == ancestor) return true;
    type = types_[type].parent;
  }
  return false;
}

Model::Model() {
  // Parsing keeps string_views into the static table, which lives for the whole program.
  std::unordered_map<std::string_view, std::int32_t> types, nodes;
  auto intern_type = [&](std::string_view n) {
    auto [it, added] = types.emplace(n, static_cast<std::int32_t>(types_.size()));
    if (added) {
      ModelType t;
      t.name = n;
      t.primitive = (!n.empty() && n[0] >= 'a' && n[0] <= 'z') || n.starts_with("System.");
      types_.push_back(t);
    }
    return it->second;
  };
  auto intern_node = [&](std::string_view p) {
    auto [it, added] = nodes.emplace(p, static_cast<std::int32_t>(nodes_.size()));
    if (added) nodes_.push_back(ModelNode{p, {}});
    return it->second;
  };
  struct PendingChoice {
    std::int32_t node;
    std::size_t field;
    std::vector<std::string_view> names;
  };
  std::vector<PendingChoice> pending;
  std::int32_t current = -1;
  for (const char* chunk : kFhirModelR4) {
    std::string_view rest(chunk);
    while (!rest.empty()) {
      size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      if (line.empty()) continue;
      if (line[0] == '^') {
        line.remove_prefix(1);
        std::int32_t t = intern_type(NextWord(line));
        std::int32_t p = intern_type(NextWord(line));
        types_[t].parent = p;
      } else if (line[0] == '=') {
        current = intern_node(line.substr(1));
      } else {
        ModelField f;
        f.name = NextWord(line);
        std::string_view type = NextWord(line);
        if (type == "?") {
          PendingChoice pc{current, nodes_[current].fields.size(), {}};
          while (!line.empty()) pc.names.push_back(NextWord(line));
          pending.push_back(std::move(pc));
        } else {
          f.type = intern_type(type);
          std::string_view target = NextWord(line);
          if (target != "-") f.node = intern_node(target);
          f.repeating = NextWord(line) == "*";
        }
        nodes_[current].fields.push_back(std::move(f));
      }
    }
  }
  for (const auto& pc : pending) {
    auto& fields = nodes_[pc.node].fields;
    for (std::string_view n : pc.names) {
      for (std::size_t i = 0; i < fields.size(); ++i) {
        if (fields[i].name == n) fields[pc.field].choices.push_back(static_cast<std::int32_t>(i));
      }
    }
  }
  // Choice lines come after the sorted fields of their node: sort, remapping choice indexes.
  for (auto& n : nodes_) {
    std::vector<std::size_t> order(n.fields.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return n.fields[a].name < n.fields[b].name;
    });
    std::vector<std::int32_t> where(order.size());
    for (std::size_t i = 0; i < order.size(); ++i) where[order[i]] = static_cast<std::int32_t>(i);
    std::vector<ModelField> sorted;
    sorted.reserve(order.size());
    for (std::size_t i : order) sorted.push_back(std::move(n.fields[i]));
    for (auto& f : sorted) {
      for (auto& c : f.choices) c = where[c];
    }
    n.fields = std::move(sorted);
  }
  for (auto& [name, idx] : types) {
    auto it = nodes.find(name);
    if (it != nodes.end()) types_[idx].node = it->second;
  }
  type_index_ = std::move(types);
  // Types without fields of their own (Age, Duration...) use their nearest ancestor's.
  for (auto& t : types_) {
    for (std::int32_t p = t.parent; t.node < 0 && p >= 0; p = types_[p].parent)
      t.node = types_[p].node;
  }
  static constexpr std::pair<std::string_view, PrimitiveKind> kRoots[] = {
      {"string", PrimitiveKind::kString},
      {"uri", PrimitiveKind::kString},
      {"base64Binary", PrimitiveKind::kString},
      {"xhtml", PrimitiveKind::kString},
      {"System.String", PrimitiveKind::kString},
      {"integer", PrimitiveKind::kInteger},
      {"System.Integer", PrimitiveKind::kInteger},
      {"decimal", PrimitiveKind::kDecimal},
      {"System.Decimal", PrimitiveKind::kDecimal},
      {"boolean", PrimitiveKind::kBoolean},
      {"System.Boolean", PrimitiveKind::kBoolean},
      {"date", PrimitiveKind::kDate},
      {"System.Date", PrimitiveKind::kDate},
      {"dateTime", PrimitiveKind::kDateTime},
      {"instant", PrimitiveKind::kDateTime},
      {"System.DateTime", PrimitiveKind::kDateTime},
      {"time", PrimitiveKind::kTime},
      {"System.Time", PrimitiveKind::kTime}};
  const std::int32_t quantity = FindType("Quantity"), resource = FindType("Resource");
  for (std::int32_t i = 0; i < static_cast<std::int32_t>(types_.size()); ++i) {
    types_[i].quantity = quantity >= 0 && IsA(i, quantity);
    types_[i].resource = resource >= 0 && IsA(i, resource);
    for (std::int32_t t = i, guard = 0;
         t >= 0 && guard < 8 && types_[i].kind == PrimitiveKind::kNone;
         t = types_[t].parent, ++guard) {
      for (auto [name, kind] : kRoots) {
        if (types_[t].name == name) types_[i].kind = kind;
      }
    }
  }
}

}  // namespace topicbridge::fhirpath
