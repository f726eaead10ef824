// The FHIR R4 model the evaluator types JSON nodes with: type hierarchy, and for each complex type
// or BackboneElement path its fields (type, repetition, choice). Built once, lazily, from the
// committed generated table fhir_model_r4.inc; immutable afterwards and safe to share.
#pragma once

#include <cstdint>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace topicbridge::fhirpath {

struct ModelField {
  std::string_view name;
  std::int32_t type = -1;  // index into Model::types; -1 for a choice element
  std::int32_t node = -1;  // node describing the field's children; -1 for primitives
  bool repeating = false;
  std::vector<std::int32_t> choices;  // choice element: indexes of its concrete fields
};

struct ModelNode {
  std::string_view path;
  std::vector<ModelField> fields;  // sorted by name
  const ModelField* Find(std::string_view name) const;
};

// How a JSON primitive typed with a model type reads as a FHIRPath system value.
enum class PrimitiveKind : std::uint8_t {
  kNone,
  kString,
  kInteger,
  kDecimal,
  kBoolean,
  kDate,
  kDateTime,
  kTime
};

struct ModelType {
  std::string_view name;
  std::int32_t parent = -1;
  std::int32_t node = -1;  // node of the type's own fields
  bool primitive = false;  // FHIR primitive (lower-case) or System.* type
  bool quantity = false;   // Quantity or a type derived from it (Age, Duration...)
  bool resource = false;   // Resource or a type derived from it
  PrimitiveKind kind = PrimitiveKind::kNone;
};

class Model {
 public:
  static const Model& R4();

  std::int32_t FindType(std::string_view name) const;  // -1 if unknown
  const ModelType& type(std::int32_t i) const { return types_[i]; }
  const ModelNode& node(std::int32_t i) const { return nodes_[i]; }
  // True when `type` is `ancestor` or derives from it.
  bool IsA(std::int32_t type, std::int32_t ancestor) const;

 private:
  Model();
  void ReadTable();
  void DeriveTypeFacts();  // inherited field nodes, primitive kinds, resource/quantity flags

  std::vector<ModelType> types_;
  std::vector<ModelNode> nodes_;
  std::unordered_map<std::string_view, std::int32_t> type_index_;
};

}  // namespace topicbridge::fhirpath
