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
};

// Writes the message body into *writer (cleared first) and returns it.
// `timestamp` is the Bundle timestamp (ISO 8601).
const std::string& BuildNotification(const ResourceEvent& event, const NotificationTarget& target,
                                     std::uint64_t event_number, std::string_view timestamp,
                                     JsonWriter* writer);

}  // namespace topicbridge
