// StoredResources: the AidboxSubscriptionTopic and AidboxTopicDestination
// rows of Aidbox's own tables, loaded at start and kept current from the
// replication stream, so users keep configuring topics where they already do.
// An invalid row is reported and left out, never fatal.
// Not thread-safe: the pipeline thread owns it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "topicbridge/change.h"
#include "topicbridge/config.h"

namespace topicbridge {

class StoredResources {
 public:
  static constexpr const char* kTopicTable = "aidboxsubscriptiontopic";
  static constexpr const char* kDestinationTable = "aidboxtopicdestination";

  // Reads both tables over an ordinary connection. Throws std::exception
  // (from libpqxx) when the database cannot be read.
  void Load(const std::string& dsn, const std::string& schema);

  // True for a change of one of the two main tables (not their _history).
  static bool Concerns(const Change& change);
  // Applies one I/U/D of those tables. Returns true when the set changed.
  bool Apply(const Change& change);

  std::vector<TopicConfig> Topics() const;
  std::vector<DestinationConfig> Destinations() const;
  // Problems of the rows left out, one per row.
  std::vector<ConfigProblem> Problems() const;

 private:
  void Put(const std::string& table, const std::string& id, const std::string& json);
  void Remove(const std::string& table, const std::string& id);

  std::map<std::string, TopicConfig> topics_;
  std::map<std::string, DestinationConfig> destinations_;
  std::map<std::string, std::vector<ConfigProblem>> problems_;  // "<table>/<id>" → problems
};

}  // namespace topicbridge
