#include "model.h"

#include <algorithm>
#include <cctype>
#include <unordered_map>

#include "topicbridge/fhir_resource_types.h"

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
  ReadTable();
  DeriveTypeFacts();
}

void Model::ReadTable() {
  // The table is static: string_views into it live for the whole program.
  auto intern_type = [&](std::string_view n) {
    auto [it, added] = type_index_.emplace(n, static_cast<std::int32_t>(types_.size()));
    if (added) {
      ModelType t;
      t.name = n;
      t.primitive = (!n.empty() && n[0] >= 'a' && n[0] <= 'z') || n.starts_with("System.");
      types_.push_back(t);
    }
    return it->second;
  };
  std::unordered_map<std::string_view, std::int32_t> nodes;
  auto intern_node = [&](std::string_view p) {
    auto [it, added] = nodes.emplace(p, static_cast<std::int32_t>(nodes_.size()));
    if (added) nodes_.push_back(ModelNode{p, {}});
    return it->second;
  };
  struct Choice {
    std::int32_t node;
    std::size_t field;
    std::vector<std::string_view> concrete;
  };
  std::vector<Choice> choices;  // resolved once every field is read
  std::int32_t current = -1;
  for (const char* chunk : kFhirModelR4) {
    for (std::string_view rest(chunk); !rest.empty();) {
      std::size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      if (line.empty()) continue;
      if (line[0] == '^') {
        line.remove_prefix(1);
        std::int32_t t = intern_type(NextWord(line));
        types_[t].parent = intern_type(NextWord(line));
        continue;
      }
      if (line[0] == '=') {
        current = intern_node(line.substr(1));
        continue;
      }
      ModelField f;
      f.name = NextWord(line);
      std::string_view type = NextWord(line);
      if (type == "?") {
        Choice choice{current, nodes_[current].fields.size(), {}};
        while (!line.empty()) choice.concrete.push_back(NextWord(line));
        choices.push_back(std::move(choice));
      } else {
        f.type = intern_type(type);
        std::string_view target = NextWord(line);
        if (target != "-") f.node = intern_node(target);
        f.repeating = NextWord(line) == "*";
      }
      nodes_[current].fields.push_back(std::move(f));
    }
  }
  for (const Choice& choice : choices) {
    ModelNode& node = nodes_[choice.node];
    for (std::string_view name : choice.concrete) {
      if (const ModelField* f = node.Find(name))
        node.fields[choice.field].choices.push_back(
            static_cast<std::int32_t>(f - node.fields.data()));
    }
  }
  for (auto& [name, index] : type_index_) {
    auto it = nodes.find(name);
    if (it != nodes.end()) types_[index].node = it->second;
  }
}

void Model::DeriveTypeFacts() {
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
    ModelType& type = types_[i];
    type.quantity = quantity >= 0 && IsA(i, quantity);
    type.resource = resource >= 0 && IsA(i, resource);
    for (std::int32_t t = i; t >= 0 && type.kind == PrimitiveKind::kNone; t = types_[t].parent) {
      for (auto [name, kind] : kRoots) {
        if (types_[t].name == name) type.kind = kind;
      }
    }
  }
}

const std::vector<std::string_view>& ResourceTypeNames() {
  static const std::vector<std::string_view> names = [] {
    const Model& model = Model::R4();
    std::vector<std::string_view> out;
    for (const char* chunk : kFhirModelR4) {
      for (std::string_view rest(chunk); !rest.empty();) {
        const std::size_t nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
        if (line.empty() || line[0] != '^') continue;
        line.remove_prefix(1);
        const std::string_view name = NextWord(line);
        const std::int32_t type = model.FindType(name);
        if (type >= 0 && model.type(type).resource && name != "Resource" &&
            name != "DomainResource")
          out.push_back(name);
      }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }();
  return names;
}

bool IsResourceType(std::string_view name) {
  const auto& names = ResourceTypeNames();
  return std::binary_search(names.begin(), names.end(), name);
}

namespace {
// Levenshtein distance ignoring ASCII case.
std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      const std::size_t next = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = row[j];
      row[j] = next;
    }
  }
  return row[b.size()];
}
}  // namespace

std::string_view SimilarResourceType(std::string_view name) {
  std::string_view best;
  std::size_t best_distance = 3;  // more than two edits away: not a typo
  for (const std::string_view known : ResourceTypeNames()) {
    const std::size_t distance = EditDistance(name, known);
    if (distance < best_distance) {
      best = known;
      best_distance = distance;
    }
  }
  return best;
}

}  // namespace topicbridge::fhirpath
