// RowMapper: turns the wal2json changes of Aidbox resource tables into
// ResourceEvents, one transaction at a time, in commit order.
//
// %previous comes from the old tuple when the table has REPLICA IDENTITY FULL,
// otherwise from the `<type>_history` row that Aidbox writes in the same
// transaction before it updates or deletes the main row. An UPDATE whose
// unchanged (TOASTed) `resource` column wal2json omitted takes the resource
// from that same history row. A change whose resource cannot be had is an
// error value, never an event with an empty resource.
#pragma once

#include <simdjson.h>

#include <map>
#include <optional>
#include <string>
#include <unordered_map>

#include "topicbridge/aidbox_to_fhir.h"
#include "topicbridge/change.h"
#include "topicbridge/json_writer.h"
#include "topicbridge/resource_event.h"

namespace topicbridge {

// "2026-11-25 15:50:07.123456+01" (PostgreSQL timestamptz text) to
// "2026-11-25T14:50:07.123456Z". nullopt if it is not that shape.
std::optional<std::string> PgTimestampToIso(std::string_view text);

class RowMapper {
 public:
  enum class Outcome { kEvent, kNone, kError };

  // `table_types` maps table names ("patient") to resource types ("Patient");
  // tables not in it are ignored. `converter` may be null (no Aidbox→FHIR
  // conversion: the stored JSON is used as is).
  RowMapper(std::map<std::string, std::string> table_types, const AidboxToFhir* converter);
  RowMapper(const RowMapper&) = delete;
  RowMapper& operator=(const RowMapper&) = delete;

  // Call on every B record: history rows never outlive their transaction.
  void BeginTransaction();

  // kEvent: *event is filled. kNone: nothing to notify (history row, no-op
  // update, other table). kError: *error says why (names table, id, LSN).
  Outcome Map(const Change& change, ResourceEvent* event, std::string* error);

  // Shapes the converter passed through unchanged, with sample paths.
  const ConversionStats& conversion_stats() const { return stats_; }
  void ClearConversionStats() { stats_.Clear(); }

  // Tables that must be decoded for `table_types`: each and its _history.
  std::vector<std::string> TablesToDecode(const std::string& schema) const;

 private:
  struct Row {
    std::string_view id, txid, ts, cts, status;
    const ColumnValue* resource = nullptr;
  };
  static Row ReadRow(const std::vector<ColumnValue>& columns);
  // Builds FHIR JSON for a stored row into *out; false with *error when the
  // stored resource is not a JSON object.
  bool BuildResource(const std::string& type, const Row& row, std::string_view resource_json,
                     std::string* out, std::string* error);

  std::map<std::string, std::string> table_types_;
  const AidboxToFhir* converter_;
  simdjson::dom::parser parser_;
  JsonWriter writer_;
  ConversionStats stats_;
  // Old versions seen in this transaction's _history inserts, by "Type/id".
  std::unordered_map<std::string, std::string> history_;
  std::unordered_map<std::string, std::string> history_aidbox_;  // stored (Aidbox) JSON
};

}  // namespace topicbridge
