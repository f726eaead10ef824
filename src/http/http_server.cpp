#include "topicbridge/http_server.h"

#include <httplib.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <stdexcept>

#include "topicbridge/destination_status.h"
#include "topicbridge/metrics.h"

namespace topicbridge {

namespace {

constexpr const char* kFhirJson = "application/fhir+json";
constexpr const char* kPrometheusText = "text/plain; version=0.0.4";

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

void WriteString(JsonWriter& w, const std::string& value) {
  w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
}

std::string OperationOutcome(const char* code, const std::string& diagnostics) {
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("resourceType");
  w.String("OperationOutcome");
  w.Key("issue");
  w.StartArray();
  w.StartObject();
  w.Key("severity");
  w.String("error");
  w.Key("code");
  w.String(code);
  w.Key("diagnostics");
  WriteString(w, diagnostics);
  w.EndObject();
  w.EndArray();
  w.EndObject();
  return buffer.GetString();
}

// Parameters are left out on purpose: they hold passwords and SASL configs.
std::string DestinationBundle(const StatusRegistry& registry) {
  const auto destinations = registry.Destinations();
  rapidjson::StringBuffer buffer;
  JsonWriter w(buffer);
  w.StartObject();
  w.Key("resourceType");
  w.String("Bundle");
  w.Key("type");
  w.String("searchset");
  w.Key("total");
  w.Uint64(destinations.size());
  w.Key("entry");
  w.StartArray();
  for (const DestinationStatus* d : destinations) {
    w.StartObject();
    w.Key("resource");
    w.StartObject();
    w.Key("resourceType");
    w.String("AidboxTopicDestination");
    w.Key("id");
    WriteString(w, d->id());
    w.Key("kind");
    WriteString(w, d->kind());
    w.Key("topic");
    WriteString(w, d->topic());
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return buffer.GetString();
}

}  // namespace

bool ParseListenAddress(const std::string& listen, std::string* host, int* port) {
  std::size_t colon;
  if (!listen.empty() && listen.front() == '[') {
    const std::size_t close = listen.find(']');
    if (close == std::string::npos || close + 1 >= listen.size() || listen[close + 1] != ':') {
      return false;
    }
    *host = listen.substr(1, close - 1);
    colon = close + 1;
  } else {
    colon = listen.rfind(':');
    if (colon == std::string::npos || colon == 0) return false;
    *host = listen.substr(0, colon);
    if (host->find(':') != std::string::npos) return false;  // bare IPv6 needs brackets
  }
  const std::string digits = listen.substr(colon + 1);
  if (digits.empty() || digits.size() > 5 ||
      digits.find_first_not_of("0123456789") != std::string::npos) {
    return false;
  }
  *port = std::stoi(digits);
  return *port <= 65535;
}

Readiness DefaultReadiness(const StatusRegistry& registry) {
  if (!registry.replication().connected.load()) return {false, "replication not connected"};
  for (const DestinationStatus* d : registry.Destinations()) {
    if (!d->Connected()) {
      std::string reason = "destination " + d->id() + " not connected";
      // The newest error usually says why (refused login, unreachable host).
      if (const auto errors = d->LatestErrors(); !errors.empty())
        reason += " (last error " + errors.front().timestamp + ": " + errors.front().message + ")";
      return {false, reason};
    }
  }
  return {true, ""};
}

HttpServer::HttpServer(const StatusRegistry& registry, HttpServerOptions options)
    : registry_(registry), options_(std::move(options)) {}

HttpServer::~HttpServer() { Stop(); }

bool HttpServer::Authorized(const httplib::Request& request) const {
  if (options_.bearer_token.empty()) return true;
  const std::string expected = "Bearer " + options_.bearer_token;
  const std::string given = request.get_header_value("Authorization");
  // Constant time in the token's length: no timing hint at a matching prefix.
  unsigned char differ = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    differ |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
  }
  return differ == 0;
}

void HttpServer::InstallRoutes() {
  server_->set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.path == "/healthz" || req.path == "/readyz" || Authorized(req)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    res.status = 401;
    res.set_header("WWW-Authenticate", "Bearer realm=\"topicbridge\"");
    res.set_content(OperationOutcome("login", "missing or wrong bearer token"), kFhirJson);
    return httplib::Server::HandlerResponse::Handled;
  });
  server_->Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  server_->Get("/readyz", [this](const httplib::Request& req, httplib::Response& res) {
    const Readiness r = options_.readiness ? options_.readiness() : DefaultReadiness(registry_);
    res.status = r.ready ? 200 : 503;
    const std::string reason = Authorized(req) ? r.reason : "not ready";
    res.set_content(r.ready ? std::string("ready\n") : reason + "\n", "text/plain");
  });
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(RenderPrometheus(registry_), kPrometheusText);
  });
  server_->Get(R"((?:/fhir)?/AidboxTopicDestination)",
               [this](const httplib::Request&, httplib::Response& res) {
                 res.set_content(DestinationBundle(registry_), kFhirJson);
               });
  server_->Get(R"((?:/fhir)?/AidboxTopicDestination/([^/]+)/\$status)",
               [this](const httplib::Request& req, httplib::Response& res) {
                 const std::string id = req.matches[1];
                 const DestinationStatus* status = registry_.FindDestination(id);
                 if (status == nullptr) {
                   res.status = 404;
                   res.set_content(
                       OperationOutcome("not-found", "AidboxTopicDestination/" + id + " not found"),
                       kFhirJson);
                   return;
                 }
                 res.set_content(RenderStatusParameters(*status), kFhirJson);
               });
}

void HttpServer::Start() {
  if (server_) return;
  std::string host;
  int port = 0;
  if (!ParseListenAddress(options_.listen, &host, &port)) {
    throw std::runtime_error("http.listen: expected \"host:port\" (e.g. 127.0.0.1:8765), got \"" +
                             options_.listen + "\"");
  }
  server_ = std::make_unique<httplib::Server>();
  // httplib's default sets SO_REUSEPORT, which lets a second daemon bind the
  // same port silently; SO_REUSEADDR alone still allows a quick restart.
  server_->set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  InstallRoutes();
  if (port == 0) {
    port_ = server_->bind_to_any_port(host);
  } else if (server_->bind_to_port(host, port)) {
    port_ = port;
  } else {
    port_ = -1;
  }
  if (port_ <= 0) {
    server_.reset();
    throw std::runtime_error("http.listen: cannot listen on " + options_.listen +
                             " (port in use or address not available)");
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // httplib's stop() is a no-op until the loop runs: wait for it so a quick
  // Stop() cannot leave the thread serving forever.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!server_->is_running() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void HttpServer::Stop() {
  if (!server_) return;
  server_->stop();
  if (thread_.joinable()) thread_.join();
  server_.reset();
}

}  // namespace topicbridge
