// Metrics: the registry rendered in the Prometheus text exposition format
// (version 0.0.4) for GET /metrics. Every family has HELP and TYPE lines, even
// when it has no samples yet, so dashboards can be built before traffic flows.
#pragma once

#include <string>

#include "topicbridge/status_registry.h"

namespace topicbridge {

// Families (all prefixed topicbridge_):
//   destination_messages_delivered_total{destination,kind}       counter
//   destination_messages_lost_total{destination,kind}            counter
//   destination_delivery_attempts_failed_total{destination,kind} counter
//   destination_errors_total{destination,kind}                   counter
//   destination_messages_queued{destination,kind}                gauge
//   destination_messages_in_flight{destination,kind}             gauge
//   destination_connected{destination,kind}                      gauge 0/1
//   topic_events_matched_total{topic}, topic_fhirpath_errors_total{topic}  counters
//   table_changes_decoded_total{table}                           counter
//   slot_lag_bytes, slot_lag_alarm (0/1), slot_lag_alarm_threshold_bytes,
//   replication_last_received_lsn, replication_last_confirmed_lsn,
//   replication_seconds_since_last_message, replication_connected  gauges
//   replication_reconnects_total                                 counter
//   replication_changes_unprocessable_total counter, replication_halted gauge 0/1
//   process_resident_memory_bytes, process_start_time_seconds    gauges
std::string RenderPrometheus(const StatusRegistry& registry);

}  // namespace topicbridge
