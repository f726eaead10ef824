#include "fhir_model.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <vector>

namespace topicbridge::fhir_model {

namespace {

std::string_view PathOf(const PathRow& row) { return {kPathText + row.offset, row.length}; }

int FindType(std::string_view name) {
  const TypeRow* end = kTypes + kTypeCount;
  const TypeRow* it = std::lower_bound(
      kTypes, end, name, [](const TypeRow& row, std::string_view n) { return row.name < n; });
  return it != end && it->name == name ? static_cast<int>(it - kTypes) : -1;
}

struct KnownTypes {
  int reference = FindType("Reference");
  int resource = FindType("Resource");
  int domain_resource = FindType("DomainResource");
  int element = FindType("Element");
};

const KnownTypes& Known() {
  static const KnownTypes known;
  return known;
}

// Every kPaths row by its path text: open addressing over a power-of-two table of row indexes
// (-1 empty), built once. A lookup is one hash and, almost always, one comparison; the binary
// search it replaced compared about 14 strings per element of every converted resource.
class PathIndex {
 public:
  PathIndex() {
    std::size_t size = 1;
    while (size < kPathCount * 2) size *= 2;
    slots_.assign(size, -1);
    for (std::size_t row = 0; row < kPathCount; ++row) {
      std::size_t slot = Hash(PathOf(kPaths[row])) & (size - 1);
      while (slots_[slot] >= 0) slot = (slot + 1) & (size - 1);
      slots_[slot] = static_cast<std::int32_t>(row);
    }
  }

  const PathRow* Find(std::string_view path) const {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t slot = Hash(path) & mask; slots_[slot] >= 0; slot = (slot + 1) & mask) {
      const PathRow& row = kPaths[slots_[slot]];
      if (PathOf(row) == path) return &row;
    }
    return nullptr;
  }

 private:
  static std::size_t Hash(std::string_view text) { return std::hash<std::string_view>{}(text); }

  std::vector<std::int32_t> slots_;
};

// The row of `base` + "." + `name`, or null.
const PathRow* FindPath(std::string_view base, std::string_view name) {
  static const PathIndex index;
  char buffer[192];
  if (base.size() + 1 + name.size() > sizeof buffer) return nullptr;
  std::memcpy(buffer, base.data(), base.size());
  buffer[base.size()] = '.';
  std::memcpy(buffer + base.size() + 1, name.data(), name.size());
  return index.Find(std::string_view(buffer, base.size() + 1 + name.size()));
}

Element TypeElement(int type) {
  Element element;
  if (type == Known().reference) {
    element.kind = Kind::kReference;
  } else if (type == Known().resource || type == Known().domain_resource) {
    element.kind = Kind::kResource;
    return element;
  } else {
    element.kind = Kind::kComplex;
  }
  element.children = {kTypes[type].name, kTypes[type].parent};
  return element;
}

Element RowElement(const PathRow& row) {
  Element element;
  switch (row.tag) {
    case PathTag::kPrimitive:
      element.kind = Kind::kPrimitive;
      break;
    case PathTag::kType:
      return TypeElement(row.arg);
    case PathTag::kBackbone:
      element.kind = Kind::kComplex;
      element.children = {PathOf(row), row.arg};
      break;
    case PathTag::kChoice:
      element.kind = Kind::kChoice;
      element.choice_types = kChoiceMasks[row.arg];
      break;
    case PathTag::kAlias:
      return RowElement(kPaths[row.arg]);
  }
  return element;
}

}  // namespace

Scope TypeScope(std::string_view type) {
  const int index = FindType(type);
  if (index < 0) return {type, Known().domain_resource};
  return {kTypes[index].name, kTypes[index].parent};
}

Element Child(const Scope& scope, std::string_view name) {
  if (const PathRow* row = FindPath(scope.base, name)) return RowElement(*row);
  for (int type = scope.fallback; type >= 0; type = kTypes[type].parent) {
    if (const PathRow* row = FindPath(kTypes[type].name, name)) return RowElement(*row);
  }
  return {};
}

Element ElementAt(std::string_view path) {
  const std::size_t dot = path.find('.');
  const std::string_view type = path.substr(0, dot);
  const int index = FindType(type);
  // An unknown first name is taken for a custom resource type, as TypeScope() does.
  Element element = index < 0 ? Element{Kind::kComplex, TypeScope(type), 0} : TypeElement(index);
  if (element.kind == Kind::kResource) element.children = TypeScope(type);
  std::size_t start = dot;
  while (start != std::string_view::npos) {
    if (element.kind != Kind::kComplex && element.kind != Kind::kReference &&
        element.kind != Kind::kResource)
      return {};
    const std::size_t end = path.find('.', start + 1);
    element = Child(element.children, path.substr(start + 1, end - start - 1));
    start = end;
  }
  return element;
}

Element ChoiceTypeElement(int choice_type) {
  const int type = kChoiceTypes[choice_type].type;
  if (type < 0) return {Kind::kPrimitive, {}, 0};
  return TypeElement(type);
}

int ChoiceTypeByAidboxKey(std::uint64_t allowed, std::string_view key) {
  for (std::size_t i = 0; i < kChoiceTypeCount; ++i) {
    if ((allowed >> i & 1) && kChoiceTypes[i].aidbox_key == key) return static_cast<int>(i);
  }
  return -1;
}

std::optional<ChoiceKey> SplitFhirChoiceKey(const Scope& scope, std::string_view key) {
  for (std::size_t i = 1; i < key.size(); ++i) {
    if (key[i] < 'A' || key[i] > 'Z') continue;
    const Element element = Child(scope, key.substr(0, i));
    if (element.kind != Kind::kChoice) continue;
    for (std::size_t t = 0; t < kChoiceTypeCount; ++t) {
      if ((element.choice_types >> t & 1) && kChoiceTypes[t].fhir_suffix == key.substr(i))
        return ChoiceKey{key.substr(0, i), static_cast<int>(t)};
    }
  }
  return std::nullopt;
}

}  // namespace topicbridge::fhir_model
