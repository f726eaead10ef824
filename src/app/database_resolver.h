// DatabaseResolver: FHIRPath resolve() for references into the Aidbox
// database. Reads the current row of <type> by id on its own ordinary
// connection, converts it to FHIR format and keeps a small cache (bounded in
// entries and age), so a criterion resolving the same Patient for many events
// costs one query. Note: it sees the row as it is when the event is matched,
// which may be newer than the event's transaction.
// Not thread-safe: the pipeline thread owns it. A returned element stays valid
// until the next Resolve() evicts it; the matcher uses it within one evaluation.
#pragma once

#include <simdjson.h>

#include <chrono>
#include <list>
#include <memory>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <unordered_map>

#include "topicbridge/aidbox_to_fhir.h"
#include "topicbridge/fhirpath.h"

namespace topicbridge {

class DatabaseResolver : public fhirpath::Resolver {
 public:
  DatabaseResolver(std::string dsn, std::string schema, const AidboxToFhir* converter,
                   std::size_t capacity = 1024,
                   std::chrono::milliseconds max_age = std::chrono::seconds(10));

  // "Patient/pt-1", or an absolute URL ending in /Patient/pt-1.
  std::optional<simdjson::dom::element> Resolve(std::string_view reference) override;

  // A change of this resource was seen: drop it from the cache.
  void Forget(std::string_view type, std::string_view id);

  std::uint64_t queries() const { return queries_; }

 private:
  struct Entry {
    std::string key;
    std::chrono::steady_clock::time_point loaded;
    std::string json;  // FHIR format; empty: no such resource
    simdjson::dom::parser parser;
    simdjson::dom::element root;
  };
  std::optional<std::string> Load(const std::string& type, const std::string& id);

  std::string dsn_;
  std::string schema_;
  const AidboxToFhir* converter_;
  std::size_t capacity_;
  std::chrono::milliseconds max_age_;
  std::unique_ptr<pqxx::connection> connection_;
  std::list<Entry> entries_;  // front: most recently used
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  std::uint64_t queries_ = 0;
};

}  // namespace topicbridge
