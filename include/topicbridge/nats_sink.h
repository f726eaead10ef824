// NATS sinks (cnats): `nats-core-best-effort` publishes and forgets;
// `nats-jetstream-at-least-once` (jetstream_sink.h) waits for the stream's PubAck.
// Both connect in the background, reconnect forever, and send the header
// `content-type: application/json` with each message.
#pragma once

#include <memory>
#include <string>

#include "topicbridge/sink.h"
#include "topicbridge/sink_factory.h"

namespace topicbridge {

// AidboxTopicDestination NATS parameters, already validated.
struct NatsOptions {
  std::string url;      // "nats://host:4222", comma-separated list allowed
  std::string subject;  // used when OutboundMessage::subject is empty
  std::string connection_name;
  std::string credentials_file_path;  // .creds file (JWT + NKey seed)
  std::string nkey_seed_file_path;    // file holding a user NKey seed ("SU...")
  std::string username;
  std::string password;
  // sslContext "tls" (or a tls:// URL): TLS with the server verified against
  // tls_ca_file (empty: the system's trust store); client certificate and key
  // for mutual TLS when both are set.
  bool tls = false;
  std::string tls_ca_file;
  std::string tls_cert_file;
  std::string tls_key_file;
  int reconnect_wait_ms = 2000;
};

// Reads validated parameters (see ValidateSinkParameters).
NatsOptions NatsOptionsFrom(const DestinationConfig& destination);

// Best effort: done(ok) as soon as cnats accepted the message into its
// outgoing buffer while connected. While disconnected, or for a few seconds
// after the server reported a permissions violation for the subject, messages
// complete with ok=false at once (nothing is buffered for later).
std::unique_ptr<Sink> MakeNatsCoreSink(const NatsOptions& options, SinkEvents events);

}  // namespace topicbridge
