#include "topicbridge/notification.h"

namespace topicbridge {

namespace {

std::string_view Method(Interaction interaction) {
  switch (interaction) {
    case Interaction::kCreate:
      return "POST";
    case Interaction::kUpdate:
      return "PUT";
    case Interaction::kDelete:
      return "DELETE";
  }
  return "POST";
}

void WriteStatus(const ResourceEvent& event, const NotificationTarget& target,
                 std::uint64_t event_number, JsonWriter& w) {
  w.BeginObject();
  w.Key("resource");
  w.BeginObject();
  w.Key("resourceType");
  w.String("AidboxSubscriptionStatus");
  w.Key("status");
  w.String("active");
  w.Key("type");
  w.String("event-notification");
  w.Key("notificationEvent");
  w.BeginArray();
  w.BeginObject();
  w.Key("eventNumber");
  w.Int(static_cast<long long>(event_number));
  w.Key("focus");
  w.BeginObject();
  w.Key("reference");
  std::string focus = event.resource_type + "/" + event.id;
  if (target.include_version_id_in_focus_reference && !event.version_id.empty())
    focus += "/_history/" + event.version_id;
  w.String(focus);
  w.EndObject();
  w.EndObject();
  w.EndArray();
  w.Key("topic");
  w.String(target.topic_url);
  w.Key("topic-destination");
  w.BeginObject();
  w.Key("reference");
  w.String("AidboxTopicDestination/" + std::string(target.destination_id));
  w.EndObject();
  w.EndObject();
  w.EndObject();
}

void WriteEntry(const ResourceEvent& event, const NotificationTarget& target, JsonWriter& w) {
  std::string url = "/fhir/" + event.resource_type;
  if (event.interaction != Interaction::kCreate) url += "/" + event.id;
  std::string base(target.base_url);
  while (!base.empty() && base.back() == '/') base.pop_back();
  w.BeginObject();
  if (target.include_entry_action) {
    w.Key("extension");
    w.BeginArray();
    w.BeginObject();
    w.Key("url");
    w.String(kEntryActionUrl);
    w.Key("valueCode");
    w.String(InteractionName(event.interaction));
    w.EndObject();
    w.EndArray();
  }
  w.Key("request");
  w.BeginObject();
  w.Key("method");
  w.String(Method(event.interaction));
  w.Key("url");
  w.String(url);
  w.EndObject();
  w.Key("fullUrl");
  std::string full_url = base + "/fhir/" + event.resource_type + "/" + event.id;
  if (target.include_version_id && !event.version_id.empty())
    full_url += "/_history/" + event.version_id;
  w.String(full_url);
  if (target.content == "full-resource" && event.interaction != Interaction::kDelete &&
      !event.current.empty()) {
    w.Key("resource");
    w.Raw(event.current);
  }
  w.EndObject();
}

}  // namespace

const std::string& BuildNotification(const ResourceEvent& event, const NotificationTarget& target,
                                     std::uint64_t event_number, std::string_view timestamp,
                                     JsonWriter* writer) {
  JsonWriter& w = *writer;
  w.Clear();
  w.BeginObject();
  w.Key("topic");
  w.String(target.subject);
  w.Key("value");
  w.BeginObject();
  w.Key("resourceType");
  w.String("Bundle");
  w.Key("type");
  w.String("history");
  w.Key("timestamp");
  w.String(timestamp);
  w.Key("entry");
  w.BeginArray();
  WriteStatus(event, target, event_number, w);
  if (target.content != "empty") WriteEntry(event, target, w);
  w.EndArray();
  w.EndObject();
  w.EndObject();
  return w.str();
}

}  // namespace topicbridge
