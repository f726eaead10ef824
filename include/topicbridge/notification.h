// Notification: the message body Aidbox sends for one event to one
// destination: {"topic": <subject>, "value": <Bundle type history>}, the
// Bundle holding an AidboxSubscriptionStatus and, unless content is `empty`,
// the event's entry (resource only with `full-resource`).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "topicbridge/json_writer.h"
#include "topicbridge/resource_event.h"

namespace topicbridge {

struct NotificationTarget {
  std::string_view topic_url;       // AidboxSubscriptionTopic.url
  std::string_view destination_id;  // AidboxTopicDestination.id
  std::string_view subject;         // NATS subject or Kafka topic: the wrapper's "topic"
  std::string_view content;         // full-resource | id-only | empty
  std::string_view base_url;        // Aidbox base URL, for fullUrl
  bool include_entry_action = false;
  bool include_version_id = false;
  bool include_version_id_in_focus_reference = false;
};

// The url of the entry extension that carries the action code
// (create | update | delete) when includeEntryAction is set.
inline constexpr std::string_view kEntryActionUrl =
    "http://aidbox.app/StructureDefinition/notification-entry-action";

// Writes the message body into *writer (cleared first) and returns it.
// `timestamp` is the Bundle timestamp (ISO 8601).
const std::string& BuildNotification(const ResourceEvent& event, const NotificationTarget& target,
                                     std::uint64_t event_number, std::string_view timestamp,
                                     JsonWriter* writer);

}  // namespace topicbridge
