// UnprocessablePolicy: what the pipeline does with a change it cannot decode or turn into an
// event. Invariant: such a change is skipped (logged with its LSN and counted) only when no
// at-least-once destination could have wanted it; otherwise the stream must halt before its
// transaction, so at-least-once never loses an event silently. Not thread-safe: the pipeline
// thread owns it (rebuilt with the destinations).
#pragma once

#include <set>
#include <string>
#include <string_view>

namespace topicbridge {

class UnprocessablePolicy {
 public:
  void Clear() { at_least_once_types_.clear(); }
  // A topic of an at-least-once destination triggers on `resource_type`.
  void AddAtLeastOnceType(std::string resource_type) {
    at_least_once_types_.insert(std::move(resource_type));
  }
  // `resource_type` of the change, empty when unknown (a message that could not be parsed,
  // which any at-least-once destination could have wanted).
  bool MustHalt(std::string_view resource_type) const {
    if (resource_type.empty()) return !at_least_once_types_.empty();
    return at_least_once_types_.find(resource_type) != at_least_once_types_.end();
  }

 private:
  std::set<std::string, std::less<>> at_least_once_types_;
};

}  // namespace topicbridge
