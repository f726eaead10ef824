// FHIR R4 model facts for the Aidbox -> FHIR converter: whether an element is a choice (and of
// which types), a Reference, a contained resource, a primitive or a complex type to descend into.
// The tables are generated (fhir_model_table.cpp, tools/gen_aidbox_model.py) and immutable, so
// every lookup here is allocation-free and safe from any thread. Returned string_views point
// into the tables or into the caller's arguments, never into temporaries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace topicbridge::fhir_model {

// ---- Generated data (fhir_model_table.cpp) ----

struct TypeRow {
  const char* name;     // complex type or resource, sorted by name
  std::int16_t parent;  // index in kTypes, -1 for Element and Resource
};

struct ChoiceTypeRow {
  const char* aidbox_key;   // "dateTime", "Quantity": the FHIR type name as Aidbox writes it
  const char* fhir_suffix;  // "DateTime", "Quantity": appended to the element name in FHIR
  std::int16_t type;        // index in kTypes; -1 for primitives
};

enum class PathTag : std::uint8_t {
  kPrimitive,  // arg unused
  kType,       // arg: kTypes index of the element's type
  kBackbone,   // children are defined under this path; arg: kTypes index they fall back to
  kChoice,     // arg: kChoiceMasks index (bit i = kChoiceTypes[i] allowed)
  kAlias,      // defined elsewhere (Questionnaire.item.item); arg: kPaths index of that row
};

struct PathRow {
  std::uint32_t offset;  // into kPathText
  std::uint8_t length;
  PathTag tag;
  std::uint16_t arg;
};

extern const TypeRow kTypes[];
extern const std::size_t kTypeCount;
extern const ChoiceTypeRow kChoiceTypes[];
extern const std::size_t kChoiceTypeCount;
extern const std::uint64_t kChoiceMasks[];
extern const char kPathText[];
extern const PathRow kPaths[];  // sorted by path; rows the type hierarchy implies are left out
extern const std::size_t kPathCount;

// ---- Lookups ----

enum class Kind : std::uint8_t { kUnknown, kPrimitive, kComplex, kReference, kResource, kChoice };

// Where the children of an element are defined: at `base` + "." + name, else along the type
// hierarchy starting at kTypes[fallback] (-1: nowhere else).
struct Scope {
  std::string_view base;
  int fallback = -1;
};

struct Element {
  Kind kind = Kind::kUnknown;
  Scope children;                  // kComplex and kReference
  std::uint64_t choice_types = 0;  // kChoice: bit i set = kChoiceTypes[i] allowed
};

// The top level of the resource or datatype `type` ("Patient", "Quantity"). A type the model
// does not know (an Aidbox custom resource) gets the elements of DomainResource only.
// REQUIRES: `type` outlives the returned Scope when the model does not know it.
Scope TypeScope(std::string_view type);

// The element `name` of something whose children are in `scope`; kUnknown if the model has none.
Element Child(const Scope& scope, std::string_view name);

// The element at a dotted path ("Patient.meta", "Meta", "Observation.component.value"). A first
// name the model does not know is taken for a custom resource type (see TypeScope).
// REQUIRES: `path` outlives the returned Element.
Element ElementAt(std::string_view path);

// What a choice element holds once its type is known (index in kChoiceTypes).
Element ChoiceTypeElement(int choice_type);

// Index in kChoiceTypes of the type in `allowed` written `key` by Aidbox ("string", "Quantity"),
// or -1.
int ChoiceTypeByAidboxKey(std::uint64_t allowed, std::string_view key);

// A FHIR choice key such as "valueQuantity" split into its element ("value") and type.
struct ChoiceKey {
  std::string_view element;
  int choice_type;
};
std::optional<ChoiceKey> SplitFhirChoiceKey(const Scope& scope, std::string_view key);

}  // namespace topicbridge::fhir_model
