#include "topicbridge/aidbox_to_fhir.h"

#include <span>

#include "fhir_model.h"

namespace topicbridge {

namespace {

using fhir_model::Element;
using fhir_model::Kind;
using fhir_model::Scope;

// One conversion: the writer, the stats and the instance path ("Observation.component.value")
// kept for warnings. The path and scratch buffers are thread-local so that a conversion
// allocates nothing once they have grown.
class Walk {
 public:
  Walk(std::string_view root_path, JsonWriter* out, ConversionStats* stats)
      : out_(out), stats_(stats != nullptr ? stats : &ignored_) {
    path_.assign(root_path);
  }

  void Fields(const Scope& scope, simdjson::dom::object object,
              std::span<const std::string_view> skip_keys = {}) {
    for (auto field : object) {
      bool skip = false;
      for (std::string_view key : skip_keys) skip = skip || key == field.key;
      if (!skip) Field(scope, field.key, field.value);
    }
  }

  void Field(const Scope& scope, std::string_view key, simdjson::dom::element value) {
    const std::size_t mark = Enter(key);
    if (key.size() > 1 && key[0] == '_') {
      // A primitive's id and extensions ("_birthDate"): an Element, or an array of them.
      out_->Key(key);
      Value({Kind::kComplex, fhir_model::TypeScope("Element"), 0}, value);
    } else if (Element element = fhir_model::Child(scope, key); element.kind == Kind::kChoice) {
      Choice(key, element.choice_types, value);
    } else {
      if (element.kind == Kind::kUnknown) element = FhirChoiceOrUnknown(scope, key);
      out_->Key(key);
      Value(element, value);
    }
    path_.resize(mark);
  }

  void Value(const Element& element, simdjson::dom::element value) {
    if (value.is_array()) {
      const simdjson::dom::array items = value.get_array().value_unsafe();
      out_->BeginArray();
      for (auto item : items) Value(element, item);
      out_->EndArray();
      return;
    }
    if (!value.is_object()) {
      if (element.kind != Kind::kPrimitive && element.kind != Kind::kUnknown && !value.is_null())
        Warn("expected an object");
      out_->Element(value);
      return;
    }
    const simdjson::dom::object object = value.get_object().value_unsafe();
    switch (element.kind) {
      case Kind::kComplex:
        if (object["resourceType"].error() == simdjson::SUCCESS) {
          Warn("reference-shaped object at a non-Reference path");
          out_->Element(value);
          return;
        }
        out_->BeginObject();
        Fields(element.children, object);
        out_->EndObject();
        return;
      case Kind::kReference:
        return Reference(element.children, object);
      case Kind::kResource:
        return Resource(value);
      case Kind::kPrimitive:
        Warn("object at a primitive path");
        break;
      case Kind::kChoice:  // an array of choices, or WriteElement at a choice path
        Warn("choice value without its element name");
        break;
      case Kind::kUnknown:
        break;
    }
    out_->Element(value);
  }

  // REQUIRES: `value` is an object.
  void Resource(simdjson::dom::element value) {
    const simdjson::dom::object object = value.get_object().value_unsafe();
    std::string_view type;
    if (object["resourceType"].get(type) != simdjson::SUCCESS) {
      Warn("resource without resourceType");
      out_->Element(value);
      return;
    }
    out_->BeginObject();
    out_->Key("resourceType");
    out_->String(type);
    static constexpr std::string_view kSkip[] = {"resourceType"};
    Fields(fhir_model::TypeScope(type), object, kSkip);
    out_->EndObject();
  }

 private:
  std::size_t Enter(std::string_view key) {
    const std::size_t mark = path_.size();
    path_ += '.';
    path_ += key;
    return mark;
  }

  void Warn(std::string_view what) {
    ++stats_->warnings;
    if (stats_->samples.size() >= ConversionStats::kMaxSamples) return;
    std::string sample = path_;
    sample += ": ";
    sample += what;
    stats_->samples.push_back(std::move(sample));
  }

  // An element the model does not list may still be a choice already written the FHIR way
  // ("valueQuantity"): then convert what it holds. Otherwise it is unknown and copied.
  Element FhirChoiceOrUnknown(const Scope& scope, std::string_view key) {
    if (auto split = fhir_model::SplitFhirChoiceKey(scope, key))
      return fhir_model::ChoiceTypeElement(split->choice_type);
    ++stats_->unknown_elements;
    return {};
  }

  // Aidbox `value: {"Quantity": {...}}` -> FHIR `valueQuantity: {...}`.
  void Choice(std::string_view key, std::uint64_t allowed, simdjson::dom::element value) {
    simdjson::dom::object object;
    if (value.get_object().get(object) == simdjson::SUCCESS && object.size() == 1) {
      const auto field = *object.begin();
      const int type = fhir_model::ChoiceTypeByAidboxKey(allowed, field.key);
      if (type >= 0) {
        const std::string_view suffix = fhir_model::kChoiceTypes[type].fhir_suffix;
        scratch_.assign(key);
        scratch_ += suffix;
        out_->Key(scratch_);
        ++stats_->choices;
        path_ += suffix;
        Value(fhir_model::ChoiceTypeElement(type), field.value);
        return;
      }
    }
    Warn("not a choice of an allowed type");
    out_->Key(key);
    out_->Element(value);
  }

  // {resourceType, id} -> "Type/id"; {uri} -> uri; {localRef} -> "#localRef". The other keys
  // (display, identifier, type, extension) are kept and converted as Reference's elements.
  void Reference(const Scope& scope, simdjson::dom::object object) {
    std::string_view type, id, uri, local;
    const bool has_type = object["resourceType"].get(type) == simdjson::SUCCESS;
    const bool has_id = object["id"].get(id) == simdjson::SUCCESS;
    const bool has_reference = object["reference"].error() == simdjson::SUCCESS;
    static constexpr std::string_view kTypeAndId[] = {"resourceType", "id"};
    static constexpr std::string_view kUri[] = {"uri"};
    static constexpr std::string_view kLocalRef[] = {"localRef"};
    std::span<const std::string_view> consumed;
    scratch_.clear();
    if (has_reference) {
      // Already FHIR.
    } else if (has_type && has_id) {
      (scratch_ = type) += '/';
      scratch_ += id;
      consumed = kTypeAndId;
    } else if (has_type || has_id) {
      Warn("reference with only one of resourceType and id");
    } else if (object["uri"].get(uri) == simdjson::SUCCESS) {
      scratch_ = uri;
      consumed = kUri;
    } else if (object["localRef"].get(local) == simdjson::SUCCESS) {
      (scratch_ = "#") += local;
      consumed = kLocalRef;
    }
    out_->BeginObject();
    if (!consumed.empty()) {
      ++stats_->references;
      out_->Key("reference");
      out_->String(scratch_);
    }
    Fields(scope, object, consumed);
    out_->EndObject();
  }

  JsonWriter* out_;
  ConversionStats* stats_;
  ConversionStats ignored_;
  static thread_local std::string path_;
  static thread_local std::string scratch_;
};

thread_local std::string Walk::path_;
thread_local std::string Walk::scratch_;

}  // namespace

void AidboxToFhir::WriteFields(std::string_view resource_type, simdjson::dom::object resource,
                               std::initializer_list<std::string_view> skip_keys, JsonWriter* out,
                               ConversionStats* stats) const {
  Walk walk(resource_type, out, stats);
  walk.Fields(fhir_model::TypeScope(resource_type), resource,
              std::span<const std::string_view>(skip_keys.begin(), skip_keys.size()));
}

void AidboxToFhir::WriteField(std::string_view parent_path, std::string_view key,
                              simdjson::dom::element value, JsonWriter* out,
                              ConversionStats* stats) const {
  Walk walk(parent_path, out, stats);
  walk.Field(fhir_model::ElementAt(parent_path).children, key, value);
}

void AidboxToFhir::WriteElement(std::string_view path, simdjson::dom::element element,
                                JsonWriter* out, ConversionStats* stats) const {
  Walk walk(path, out, stats);
  walk.Value(fhir_model::ElementAt(path), element);
}

std::string AidboxToFhir::ConvertResource(std::string_view aidbox_json,
                                          ConversionStats* stats) const {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::string_view type;
  if (parser.parse(aidbox_json.data(), aidbox_json.size()).get(root) != simdjson::SUCCESS ||
      root["resourceType"].get(type) != simdjson::SUCCESS)
    return {};
  JsonWriter out;
  Walk walk(type, &out, stats);
  walk.Resource(root);
  return out.Take();
}

}  // namespace topicbridge
