#include "stored_resources.h"

#include <spdlog/spdlog.h>

#include <pqxx/pqxx>

namespace topicbridge {

void StoredResources::Load(const std::string& dsn, const std::string& schema) {
  pqxx::connection connection(dsn);
  pqxx::read_transaction tx(connection);
  for (const char* table : {kTopicTable, kDestinationTable}) {
    const auto rows = tx.exec("SELECT id, resource::text FROM " + tx.quote_name(schema) + "." +
                              tx.quote_name(table));
    for (const auto& row : rows) Put(table, row[0].c_str(), row[1].c_str());
  }
}

bool StoredResources::Concerns(const Change& change) {
  return change.table == kTopicTable || change.table == kDestinationTable;
}

bool StoredResources::Apply(const Change& change) {
  const std::string table(change.table);
  if (change.kind == ChangeKind::kDelete) {
    const ColumnValue* id = change.Identity("id");
    if (id == nullptr) return false;
    Remove(table, std::string(id->text));
    return true;
  }
  if (change.kind != ChangeKind::kInsert && change.kind != ChangeKind::kUpdate) return false;
  const ColumnValue* id = change.Column("id");
  const ColumnValue* resource = change.Column("resource");
  if (id == nullptr) return false;
  if (resource == nullptr || resource->is_null) {
    // An UPDATE that left the (TOASTed) resource alone: nothing to reload.
    return false;
  }
  Put(table, std::string(id->text), std::string(resource->text));
  return true;
}

void StoredResources::Put(const std::string& table, const std::string& id,
                          const std::string& json) {
  Remove(table, id);
  const bool is_topic = table == kTopicTable;
  auto loaded = is_topic ? ParseStoredTopic(id, json) : ParseStoredDestination(id, json);
  if (!loaded.problems.empty()) {
    for (const auto& p : loaded.problems)
      spdlog::error("{} left out: {}", table + "/" + id, p.ToString());
    problems_[table + "/" + id] = std::move(loaded.problems);
    return;
  }
  if (is_topic)
    topics_[id] = std::move(loaded.config.topics.front());
  else
    destinations_[id] = std::move(loaded.config.destinations.front());
}

void StoredResources::Remove(const std::string& table, const std::string& id) {
  problems_.erase(table + "/" + id);
  if (table == kTopicTable)
    topics_.erase(id);
  else
    destinations_.erase(id);
}

std::vector<TopicConfig> StoredResources::Topics() const {
  std::vector<TopicConfig> out;
  for (const auto& [id, t] : topics_) out.push_back(t);
  return out;
}

std::vector<DestinationConfig> StoredResources::Destinations() const {
  std::vector<DestinationConfig> out;
  for (const auto& [id, d] : destinations_) out.push_back(d);
  return out;
}

std::vector<ConfigProblem> StoredResources::Problems() const {
  std::vector<ConfigProblem> out;
  for (const auto& [key, list] : problems_) out.insert(out.end(), list.begin(), list.end());
  return out;
}

}  // namespace topicbridge
