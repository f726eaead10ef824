// Kafka sink (librdkafka) for `kafka-at-least-once` (acks=all, one request in
// flight per broker, not idempotent) and `kafka-best-effort` (acks=1). Every
// message completes from its delivery report, served by one poll thread per
// producer. Header
// `content-type: application/json`; the key is OutboundMessage::key when
// keyByResourceId is true and the key is non-empty.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "topicbridge/sink.h"
#include "topicbridge/sink_factory.h"

namespace topicbridge {

struct KafkaOptions {
  std::string topic;  // used when OutboundMessage::subject is empty
  bool at_least_once = true;
  bool key_by_resource_id = false;
  // Publish waits at most this long for room in librdkafka's queue, then
  // completes with ok=false (Kafka's max.block.ms, enforced by the sink).
  int max_block_ms = 60000;
  // librdkafka properties, in order (bootstrap.servers, acks, ...).
  std::vector<std::pair<std::string, std::string>> properties;
  std::vector<std::string> secrets;  // values scrubbed from every error text
};

// Maps validated Aidbox parameters to librdkafka properties (table in kafka_sink.cpp).
// Problems (bad values, rejected by rd_kafka_conf_set) are appended to `problems`.
KafkaOptions KafkaOptionsFrom(const DestinationConfig& destination,
                              std::vector<ConfigProblem>* problems);

// Throws SinkConfigError if librdkafka rejects the configuration.
std::unique_ptr<Sink> MakeKafkaSink(const KafkaOptions& options, SinkEvents events);

// Tests only: raises a fatal error on `sink`'s producer (librdkafka's
// rd_kafka_test_fatal_error), as librdkafka would on an inconsistency it cannot
// recover from. Returns false if `sink` is not a Kafka sink.
bool RaiseKafkaFatalErrorForTest(Sink& sink);

}  // namespace topicbridge
