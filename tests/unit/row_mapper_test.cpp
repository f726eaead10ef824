#include "topicbridge/row_mapper.h"

#include <doctest/doctest.h>

using namespace topicbridge;

namespace {

// Columns as the decoder yields them for an Aidbox row.
std::vector<ColumnValue> Row(std::string_view id, std::string_view txid, std::string_view status,
                             const std::string* resource) {
  std::vector<ColumnValue> cols = {
      {"id", "text", id, false},
      {"txid", "bigint", txid, false},
      {"ts", "timestamp with time zone", "2026-11-25 15:50:07.123456+00", false},
      {"cts", "timestamp with time zone", "2026-11-25 16:00:00+01", false},
      {"resource_type", "text", "Patient", false},
      {"status", "resource_status", status, false}};
  if (resource != nullptr) cols.push_back({"resource", "jsonb", *resource, false});
  return cols;
}

Change Make(ChangeKind kind, std::string_view table) {
  Change c;
  c.kind = kind;
  c.schema = "public";
  c.table = table;
  return c;
}

struct Fixture {
  RowMapper mapper{{{"patient", "Patient"}}, nullptr};
  ResourceEvent event;
  std::string error;
  RowMapper::Outcome Map(const Change& c) { return mapper.Map(c, &event, &error); }
};

}  // namespace

TEST_CASE("timestamps become UTC ISO 8601 with Z") {
  CHECK(PgTimestampToIso("2026-11-25 15:50:07.123456+00") == "2026-11-25T15:50:07.123456Z");
  CHECK(PgTimestampToIso("2026-01-01 00:30:00+01") == "2025-12-31T23:30:00Z");
  CHECK(PgTimestampToIso("2026-03-01 23:00:00.5-05:30") == "2026-03-02T04:30:00.5Z");
  CHECK_FALSE(PgTimestampToIso("yesterday").has_value());
}

TEST_CASE("an inserted row becomes a create with id, resourceType and meta") {
  Fixture f;
  const std::string stored = R"({"name":[{"family":"Smith"}],"meta":{"profile":["p"]}})";
  Change c = Make(ChangeKind::kInsert, "patient");
  c.columns = Row("pt-1", "42", "created", &stored);
  REQUIRE(f.Map(c) == RowMapper::Outcome::kEvent);
  CHECK(f.event.interaction == Interaction::kCreate);
  CHECK(f.event.id == "pt-1");
  CHECK(f.event.version_id == "42");
  CHECK(f.event.previous.empty());
  CHECK(f.event.current ==
        R"({"resourceType":"Patient","id":"pt-1","meta":{"profile":["p"],"versionId":"42",)"
        R"("lastUpdated":"2026-11-25T15:50:07.123456Z","extension":[{"url":"ex:createdAt",)"
        R"("valueInstant":"2026-11-25T15:00:00Z"}]},"name":[{"family":"Smith"}]})");
}

TEST_CASE("an update takes %previous from the history row of the same transaction") {
  Fixture f;
  f.mapper.BeginTransaction();
  const std::string old_json = R"({"birthDate":"1980-01-01"})";
  const std::string new_json = R"({"birthDate":"1981-01-01"})";
  Change h = Make(ChangeKind::kInsert, "patient_history");
  h.columns = Row("pt-1", "41", "created", &old_json);
  CHECK(f.Map(h) == RowMapper::Outcome::kNone);
  Change u = Make(ChangeKind::kUpdate, "patient");
  u.columns = Row("pt-1", "42", "updated", &new_json);
  REQUIRE(f.Map(u) == RowMapper::Outcome::kEvent);
  CHECK(f.event.interaction == Interaction::kUpdate);
  CHECK(f.event.previous.find(R"("birthDate":"1980-01-01")") != std::string::npos);
  CHECK(f.event.previous.find(R"("versionId":"41")") != std::string::npos);
  CHECK(f.event.current.find(R"("birthDate":"1981-01-01")") != std::string::npos);
}

TEST_CASE("an update without the TOASTed resource column uses the history copy") {
  Fixture f;
  f.mapper.BeginTransaction();
  const std::string old_json = R"({"active":true})";
  Change h = Make(ChangeKind::kInsert, "patient_history");
  h.columns = Row("pt-1", "41", "created", &old_json);
  f.Map(h);
  Change u = Make(ChangeKind::kUpdate, "patient");
  u.columns = Row("pt-1", "42", "updated", nullptr);
  // Same stored resource as before: a no-op update does not fire.
  CHECK(f.Map(u) == RowMapper::Outcome::kNone);
}

TEST_CASE("an update with no resource anywhere is an error, never an empty resource") {
  Fixture f;
  f.mapper.BeginTransaction();
  Change u = Make(ChangeKind::kUpdate, "patient");
  u.columns = Row("pt-9", "42", "updated", nullptr);
  CHECK(f.Map(u) == RowMapper::Outcome::kError);
  CHECK(f.error.find("pt-9") != std::string::npos);
}

TEST_CASE("REPLICA IDENTITY FULL supplies %previous and the deleted resource") {
  Fixture f;
  const std::string old_json = R"({"gender":"male"})";
  Change d = Make(ChangeKind::kDelete, "patient");
  d.identity = Row("pt-2", "40", "created", &old_json);
  REQUIRE(f.Map(d) == RowMapper::Outcome::kEvent);
  CHECK(f.event.interaction == Interaction::kDelete);
  CHECK(f.event.id == "pt-2");
  CHECK(f.event.current.empty());
  CHECK(f.event.previous.find(R"("gender":"male")") != std::string::npos);
}

TEST_CASE("a delete with only the key still names the resource") {
  Fixture f;
  f.mapper.BeginTransaction();
  Change d = Make(ChangeKind::kDelete, "patient");
  d.identity = {{"id", "text", "pt-3", false}};
  REQUIRE(f.Map(d) == RowMapper::Outcome::kEvent);
  CHECK(f.event.id == "pt-3");
  CHECK(f.event.previous.empty());
}

TEST_CASE("other tables and malformed resources") {
  Fixture f;
  Change other = Make(ChangeKind::kInsert, "encounter");
  CHECK(f.Map(other) == RowMapper::Outcome::kNone);
  const std::string bad = "[1,2]";
  Change c = Make(ChangeKind::kInsert, "patient");
  c.columns = Row("pt-4", "1", "created", &bad);
  CHECK(f.Map(c) == RowMapper::Outcome::kError);
  CHECK(f.error.find("not a JSON object") != std::string::npos);
}

TEST_CASE("decoded tables include the history tables") {
  RowMapper mapper{{{"patient", "Patient"}}, nullptr};
  const auto tables = mapper.TablesToDecode("public");
  REQUIRE(tables.size() == 2);
  CHECK(tables[0] == "public.patient");
  CHECK(tables[1] == "public.patient_history");
}

TEST_CASE("with the converter, criteria and notifications see FHIR format") {
  AidboxToFhir converter;
  RowMapper mapper{{{"observation", "Observation"}}, &converter};
  const std::string stored =
      R"({"status":"final","subject":{"resourceType":"Patient","id":"pt-1"},)"
      R"("value":{"Quantity":{"value":181,"unit":"mg/dL"}}})";
  Change c = Make(ChangeKind::kInsert, "observation");
  c.columns = Row("obs-1", "7", "created", &stored);
  ResourceEvent event;
  std::string error;
  REQUIRE(mapper.Map(c, &event, &error) == RowMapper::Outcome::kEvent);
  CHECK(event.resource_type == "Observation");
  CHECK(event.current.find(R"("subject":{"reference":"Patient/pt-1"})") != std::string::npos);
  CHECK(event.current.find(R"("valueQuantity":{"value":181,"unit":"mg/dL"})") != std::string::npos);
}
