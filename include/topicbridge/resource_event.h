// ResourceEvent: one committed create, update or delete of a FHIR resource,
// as topics see it. `current` and `previous` are FHIR-format JSON documents
// owned by the event; either may be empty (no %current on delete, no
// %previous on create or when the old version is unknown).
#pragma once

#include <string>
#include <string_view>

namespace topicbridge {

enum class Interaction { kCreate, kUpdate, kDelete };

// "create" | "update" | "delete", as supportedInteraction and entry actions spell them.
inline std::string_view InteractionName(Interaction interaction) {
  switch (interaction) {
    case Interaction::kUpdate: return "update";
    case Interaction::kDelete: return "delete";
    case Interaction::kCreate: break;
  }
  return "create";
}

struct ResourceEvent {
  std::string resource_type;  // "Patient"
  std::string id;
  Interaction interaction = Interaction::kCreate;
  std::string version_id;  // txid of the version this event produced (of the deletion for deletes)
  std::string current;     // FHIR JSON; empty on delete
  std::string previous;    // FHIR JSON; empty when there is no previous version
};

}  // namespace topicbridge
