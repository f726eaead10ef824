#include "database_resolver.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

namespace topicbridge {

namespace {

// Splits ".../Type/id" into Type and id; false unless Type looks like a
// resource type (capitalised) and both are non-empty.
bool SplitReference(std::string_view reference, std::string* type, std::string* id) {
  if (const auto hash = reference.find_first_of("#?"); hash != std::string_view::npos)
    reference = reference.substr(0, hash);
  if (const auto history = reference.find("/_history/"); history != std::string_view::npos)
    reference = reference.substr(0, history);
  const auto slash = reference.rfind('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == reference.size()) return false;
  const auto before = reference.rfind('/', slash - 1);
  const auto start = before == std::string_view::npos ? 0 : before + 1;
  *type = std::string(reference.substr(start, slash - start));
  *id = std::string(reference.substr(slash + 1));
  return !type->empty() && std::isupper(static_cast<unsigned char>((*type)[0])) &&
         std::all_of(type->begin(), type->end(),
                     [](unsigned char c) { return std::isalnum(c) != 0; });
}

}  // namespace

DatabaseResolver::DatabaseResolver(std::string dsn, std::string schema,
                                   const AidboxToFhir* converter, std::size_t capacity,
                                   std::chrono::milliseconds max_age)
    : dsn_(std::move(dsn)),
      schema_(std::move(schema)),
      converter_(converter),
      capacity_(capacity),
      max_age_(max_age) {}

void DatabaseResolver::Forget(std::string_view type, std::string_view id) {
  std::string key(type);
  key += '/';
  key += id;
  if (auto it = index_.find(key); it != index_.end()) {
    entries_.erase(it->second);
    index_.erase(it);
  }
}

std::optional<std::string> DatabaseResolver::Load(const std::string& type, const std::string& id) {
  std::string table = type;
  std::transform(table.begin(), table.end(), table.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  try {
    if (!connection_ || !connection_->is_open())
      connection_ = std::make_unique<pqxx::connection>(dsn_);
    pqxx::nontransaction tx(*connection_);
    ++queries_;
    const auto rows = tx.exec_params(
        "SELECT jsonb_build_object('resourceType', $1::text, 'id', id) || resource FROM " +
            tx.quote_name(schema_) + "." + tx.quote_name(table) +
            " WHERE id = $2 AND status <> 'deleted'",
        type, id);
    if (rows.empty()) return std::string();
    const std::string stored = rows[0][0].c_str();
    if (converter_ == nullptr) return stored;
    return converter_->ConvertResource(stored);
  } catch (const pqxx::undefined_table&) {
    return std::string();  // a type Aidbox has no table for: nothing to resolve
  } catch (const std::exception& e) {
    spdlog::warn("resolve({}/{}): cannot read the database: {}", type, id, e.what());
    connection_.reset();
    return std::nullopt;
  }
}

std::optional<simdjson::dom::element> DatabaseResolver::Resolve(std::string_view reference) {
  std::string type, id;
  if (!SplitReference(reference, &type, &id)) return std::nullopt;
  const std::string key = type + "/" + id;
  const auto now = std::chrono::steady_clock::now();
  if (auto it = index_.find(key); it != index_.end()) {
    if (now - it->second->loaded <= max_age_) {
      entries_.splice(entries_.begin(), entries_, it->second);
      if (entries_.front().json.empty()) return std::nullopt;
      return entries_.front().root;
    }
    entries_.erase(it->second);
    index_.erase(it);
  }
  auto json = Load(type, id);
  if (!json) return std::nullopt;  // not cached: try again next time
  entries_.emplace_front();
  Entry& entry = entries_.front();
  entry.key = key;
  entry.loaded = now;
  entry.json = std::move(*json);
  index_[key] = entries_.begin();
  if (entries_.size() > capacity_) {
    index_.erase(entries_.back().key);
    entries_.pop_back();
  }
  if (entry.json.empty() || entry.parser.parse(entry.json).get(entry.root) != simdjson::SUCCESS)
    return std::nullopt;
  return entry.root;
}

}  // namespace topicbridge
