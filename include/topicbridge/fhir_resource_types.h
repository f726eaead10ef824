// The concrete FHIR R4 resource types (Patient, Observation, ...; not the abstract Resource and
// DomainResource), read from the generated model the FHIRPath evaluator types JSON with; used to
// check the resource a topic trigger names. Built once on first use, immutable, thread-safe.
#pragma once

#include <string_view>
#include <vector>

namespace topicbridge::fhirpath {

// Sorted by name; the views point into static data and live for the whole program.
const std::vector<std::string_view>& ResourceTypeNames();

bool IsResourceType(std::string_view name);

// The resource type `name` was most likely meant to be: equal ignoring case, or at most two
// edits away ("Patinet" → "Patient"). Empty when nothing is that close.
std::string_view SimilarResourceType(std::string_view name);

}  // namespace topicbridge::fhirpath
