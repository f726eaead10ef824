#include <doctest/doctest.h>
#include <httplib.h>
#include <rapidjson/document.h>

#include <stdexcept>
#include <string>

#include "topicbridge/http_server.h"

using namespace topicbridge;

namespace {

struct Fixture {
  StatusRegistry registry;
  Readiness readiness{true, ""};
  HttpServer server{registry, HttpServerOptions{"127.0.0.1:0", [this] { return readiness; }, ""}};

  Fixture() {
    DestinationStatus& d = registry.AddDestination("basic", "nats-core-best-effort", "http://t");
    d.OnQueued();
    d.OnInFlight();
    d.OnDelivered();
    server.Start();
  }
  httplib::Client Client() { return httplib::Client("127.0.0.1", server.port()); }
};

}  // namespace

TEST_CASE("healthz answers ok") {
  Fixture f;
  auto res = f.Client().Get("/healthz");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->body == "ok\n");
}

TEST_CASE("readyz follows the readiness callback") {
  Fixture f;
  auto client = f.Client();
  CHECK(client.Get("/readyz")->status == 200);
  f.readiness = {false, "replication not connected"};
  auto res = client.Get("/readyz");
  CHECK(res->status == 503);
  CHECK(res->body.find("replication not connected") != std::string::npos);
}

TEST_CASE("default readiness needs replication and every destination connected") {
  StatusRegistry registry;
  DestinationStatus& d = registry.AddDestination("a", "kafka-best-effort", "t");
  CHECK_FALSE(DefaultReadiness(registry).ready);
  registry.replication().connected = true;
  CHECK(DefaultReadiness(registry).reason == "destination a not connected");
  d.RecordError("kafka: broker down");
  const std::string reason = DefaultReadiness(registry).reason;
  CHECK(reason.rfind("destination a not connected (last error 20", 0) == 0);
  CHECK(reason.find("Z: kafka: broker down)") != std::string::npos);
  d.SetConnected(true);
  CHECK(DefaultReadiness(registry).ready);
}

TEST_CASE("$status returns the destination's Parameters as FHIR JSON") {
  Fixture f;
  auto res = f.Client().Get("/fhir/AidboxTopicDestination/basic/$status");
  REQUIRE(res);
  CHECK(res->status == 200);
  CHECK(res->get_header_value("Content-Type") == "application/fhir+json");
  rapidjson::Document doc;
  doc.Parse(res->body.c_str());
  REQUIRE_FALSE(doc.HasParseError());
  CHECK(std::string(doc["resourceType"].GetString()) == "Parameters");
  CHECK(doc["parameter"][0]["valueDecimal"].GetUint64() == 1);
}

TEST_CASE("$status also answers percent-encoded and without the /fhir prefix, as Aidbox does") {
  Fixture f;
  auto client = f.Client();
  CHECK(client.Get("/fhir/AidboxTopicDestination/basic/%24status")->status == 200);
  CHECK(client.Get("/AidboxTopicDestination/basic/$status")->status == 200);
  CHECK(client.Get("/AidboxTopicDestination")->status == 200);
}

TEST_CASE("$status of an unknown destination is a 404 OperationOutcome") {
  Fixture f;
  auto res = f.Client().Get("/fhir/AidboxTopicDestination/nope/$status");
  REQUIRE(res);
  CHECK(res->status == 404);
  rapidjson::Document doc;
  doc.Parse(res->body.c_str());
  CHECK(std::string(doc["resourceType"].GetString()) == "OperationOutcome");
  CHECK(std::string(doc["issue"][0]["code"].GetString()) == "not-found");
}

TEST_CASE("destination list is a Bundle without parameters") {
  Fixture f;
  auto res = f.Client().Get("/fhir/AidboxTopicDestination");
  REQUIRE(res);
  rapidjson::Document doc;
  doc.Parse(res->body.c_str());
  CHECK(std::string(doc["resourceType"].GetString()) == "Bundle");
  CHECK(doc["total"].GetUint() == 1);
  CHECK(std::string(doc["entry"][0]["resource"]["id"].GetString()) == "basic");
  CHECK_FALSE(doc["entry"][0]["resource"].HasMember("parameter"));
}

TEST_CASE("metrics are Prometheus text") {
  Fixture f;
  auto res = f.Client().Get("/metrics");
  REQUIRE(res);
  CHECK(res->get_header_value("Content-Type") == "text/plain; version=0.0.4");
  CHECK(res->body.find("topicbridge_destination_messages_delivered_total{destination=\"basic\"") !=
        std::string::npos);
}

TEST_CASE("a port already in use is a clear start-up error") {
  Fixture f;
  StatusRegistry registry;
  HttpServer second(registry, {"127.0.0.1:" + std::to_string(f.server.port()), {}, ""});
  CHECK_THROWS_WITH_AS(second.Start(), doctest::Contains("http.listen: cannot listen on"),
                       std::runtime_error);
}

TEST_CASE("a malformed listen address names http.listen") {
  StatusRegistry registry;
  HttpServer server(registry, {"localhost", {}, ""});
  CHECK_THROWS_WITH_AS(server.Start(), doctest::Contains("http.listen: expected"),
                       std::runtime_error);
  std::string host;
  int port = 0;
  CHECK(ParseListenAddress("[::1]:9000", &host, &port));
  CHECK(host == "::1");
  CHECK(port == 9000);
  CHECK_FALSE(ParseListenAddress("127.0.0.1:70000", &host, &port));
  CHECK_FALSE(ParseListenAddress("127.0.0.1:", &host, &port));
}

TEST_CASE("stop right after start returns") {
  StatusRegistry registry;
  HttpServer server(registry, {"127.0.0.1:0", {}, ""});
  server.Start();
  server.Stop();
  server.Stop();
}

TEST_CASE("with a bearer token every route but the probes answers 401 without it") {
  StatusRegistry registry;
  registry.AddDestination("basic", "nats-core-best-effort", "http://t");
  HttpServerOptions options{"127.0.0.1:0",
                            [] {
                              return Readiness{false, "destination basic down"};
                            },
                            "s3cret-token"};
  HttpServer server(registry, options);
  server.Start();
  httplib::Client anonymous("127.0.0.1", server.port());
  for (const char* path :
       {"/metrics", "/fhir/AidboxTopicDestination", "/fhir/AidboxTopicDestination/basic/$status",
        "/AidboxTopicDestination/basic/$status", "/fhir/AidboxTopicDestination/nope/$status"}) {
    auto res = anonymous.Get(path);
    REQUIRE(res);
    CHECK_MESSAGE(res->status == 401, path);
    CHECK(res->get_header_value("WWW-Authenticate") == "Bearer realm=\"topicbridge\"");
    CHECK(res->body.find("s3cret-token") == std::string::npos);
  }
  CHECK(anonymous.Get("/healthz")->status == 200);
  auto not_ready = anonymous.Get("/readyz");
  CHECK(not_ready->status == 503);
  CHECK(not_ready->body == "not ready\n");  // no reason without the token

  httplib::Client wrong("127.0.0.1", server.port());
  wrong.set_bearer_token_auth("s3cret-tokeX");
  CHECK(wrong.Get("/metrics")->status == 401);

  httplib::Client authorized("127.0.0.1", server.port());
  authorized.set_bearer_token_auth("s3cret-token");
  CHECK(authorized.Get("/metrics")->status == 200);
  CHECK(authorized.Get("/fhir/AidboxTopicDestination/basic/$status")->status == 200);
  CHECK(authorized.Get("/readyz")->body == "destination basic down\n");
}

TEST_CASE("without a bearer token nothing asks for one") {
  Fixture f;
  CHECK(f.Client().Get("/metrics")->status == 200);
}
