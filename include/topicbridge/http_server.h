// HttpServer: the operator's window (cpp-httplib on its own thread): /healthz,
// /readyz, /metrics and the Aidbox-compatible $status of each destination.
// Handlers only read the StatusRegistry (atomics) and the readiness callback, so
// serving a request never blocks the pipeline.
// Thread-safety: Start/Stop from one thread; the registry must outlive the server.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "topicbridge/status_registry.h"

namespace httplib {
class Server;
struct Request;
}  // namespace httplib

namespace topicbridge {

struct Readiness {
  bool ready = false;
  std::string reason;  // why not ready, e.g. "replication not connected"
};

struct HttpServerOptions {
  std::string listen = "127.0.0.1:8765";  // "host:port", "[v6]:port"; port 0 picks a free one
  // Called per GET /readyz (on the HTTP thread). Empty: ready when replication
  // and every registered destination report connected.
  std::function<Readiness()> readiness;
  // Non-empty: every route except /healthz and /readyz needs the header
  // `Authorization: Bearer <token>` (else 401). The probes stay open for
  // Kubernetes, but without the token /readyz tells only "not ready", not why.
  std::string bearer_token;
};

// Routes:
//   GET /healthz                                  200 "ok"
//   GET /readyz                                   200 "ready" | 503 <reason>
//   GET /metrics                                  text/plain; version=0.0.4
//   GET /fhir/AidboxTopicDestination              Bundle (searchset) of loaded destinations
//   (both AidboxTopicDestination routes also answer without the /fhir prefix)
//   GET /fhir/AidboxTopicDestination/<id>/$status Parameters | 404 OperationOutcome
// With a bearer token, a request without it gets 401 and an OperationOutcome.
class HttpServer {
 public:
  HttpServer(const StatusRegistry& registry, HttpServerOptions options);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds and starts serving on a new thread. Throws std::runtime_error with a
  // message naming `http.listen` if the address is malformed or cannot be bound
  // (e.g. the port is in use).
  void Start();
  // Stops serving and joins the thread. Idempotent.
  void Stop();
  // The bound port (after Start; useful with port 0).
  int port() const { return port_; }

 private:
  void InstallRoutes();
  bool Authorized(const httplib::Request& request) const;

  const StatusRegistry& registry_;
  HttpServerOptions options_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

// The default readiness rule used when HttpServerOptions::readiness is empty.
Readiness DefaultReadiness(const StatusRegistry& registry);

// Splits "host:port" / "[::1]:port". Returns false on anything else.
bool ParseListenAddress(const std::string& listen, std::string* host, int* port);

}  // namespace topicbridge
