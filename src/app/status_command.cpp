// `topicbridge status -c FILE`: the $status of every destination of a running
// instance, as a table for people on a terminal.
#include <httplib.h>
#include <simdjson.h>

#include <cstdio>
#include <iostream>
#include <map>

#include "commands.h"
#include "topicbridge/config.h"
#include "topicbridge/http_server.h"

namespace topicbridge {

namespace {

// Parameters.parameter[] as name → printable value (lastErrorDetail: newest message).
std::map<std::string, std::string> ReadParameters(simdjson::dom::element root) {
  std::map<std::string, std::string> values;
  simdjson::dom::array parameters;
  if (root["parameter"].get(parameters) != simdjson::SUCCESS) return values;
  for (auto p : parameters) {
    std::string_view name;
    if (p["name"].get(name) != simdjson::SUCCESS) continue;
    if (name == "lastErrorDetail") {
      if (values.count("lastError") != 0) continue;
      simdjson::dom::array parts;
      if (p["part"].get(parts) != simdjson::SUCCESS) continue;
      for (auto part : parts) {
        std::string_view part_name, text;
        if (part["name"].get(part_name) == simdjson::SUCCESS && part_name == "message" &&
            part["valueString"].get(text) == simdjson::SUCCESS)
          values["lastError"] = std::string(text);
      }
      continue;
    }
    simdjson::dom::object object;
    if (p.get_object().get(object) != simdjson::SUCCESS) continue;
    for (auto field : object) {
      if (!field.key.starts_with("value")) continue;
      if (field.value.is_string())
        values[std::string(name)] = std::string(field.value.get_string().value_unsafe());
      else
        values[std::string(name)] = simdjson::minify(field.value);
    }
  }
  return values;
}

}  // namespace

int StatusCommand(const std::string& config_path) {
  const auto loaded = LoadConfigFile(config_path);
  if (!loaded.problems.empty()) {
    for (const auto& p : loaded.problems) std::cerr << config_path << ": " << p.ToString() << "\n";
    return 1;
  }
  std::string host;
  int port = 0;
  if (!ParseListenAddress(loaded.config.http.listen, &host, &port)) {
    std::cerr << config_path << ": http.listen: expected host:port\n";
    return 1;
  }
  if (host == "0.0.0.0") host = "127.0.0.1";
  httplib::Client client(host, port);
  client.set_connection_timeout(3);
  if (!loaded.config.http.bearer_token.empty()) {
    client.set_bearer_token_auth(loaded.config.http.bearer_token);
  }
  bool header = false;
  int code = 0;
  simdjson::dom::parser parser;
  for (const auto& d : loaded.config.destinations) {
    auto response = client.Get("/fhir/AidboxTopicDestination/" + d.id + "/$status");
    if (!response) {
      std::cerr << "cannot reach topicbridge at " << loaded.config.http.listen
                << ": is `topicbridge run -c " << config_path << "` running?\n";
      return 2;
    }
    if (!header) {
      std::printf("%-24s %-30s %-8s %10s %10s %10s %10s  %s\n", "DESTINATION", "KIND", "STATUS",
                  "DELIVERED", "INPROCESS", "LOST/QUEUE", "FAILED", "LAST ERROR");
      header = true;
    }
    simdjson::dom::element root;
    if (response->status != 200 || parser.parse(response->body).get(root) != simdjson::SUCCESS) {
      std::printf("%-24s %-30s %-8s (HTTP %d)\n", d.id.c_str(), d.kind.c_str(), "unknown",
                  response->status);
      code = 1;
      continue;
    }
    auto v = ReadParameters(root);
    const bool at_least_once = d.AtLeastOnce();
    std::printf("%-24s %-30s %-8s %10s %10s %10s %10s  %s\n", d.id.c_str(), d.kind.c_str(),
                v["status"].c_str(), v["messagesDelivered"].c_str(), v["messagesInProcess"].c_str(),
                (at_least_once ? v["messagesQueued"] : v["messagesLost"]).c_str(),
                at_least_once ? v["messagesDeliveryAttempts"].c_str() : "-",
                v["lastError"].c_str());
  }
  return code;
}

}  // namespace topicbridge
