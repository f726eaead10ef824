// Wal2JsonDecoder on wal2json lines recorded from PostgreSQL 15 (tests/fixtures/wal2json, see
// record.sh there), plus the Lsn text form it relies on.
#include <doctest/doctest.h>
#include <simdjson.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "topicbridge/lsn.h"
#include "topicbridge/wal2json_decoder.h"

// Counts heap allocations so a test can prove steady-state decoding allocates nothing.
namespace {
std::atomic<long> g_allocations{0};
}  // namespace
void* operator new(std::size_t size) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t& tag) noexcept {
  return operator new(size, tag);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace topicbridge {
namespace {

std::vector<std::string> ReadLines(const std::string& name) {
  std::ifstream in(std::string(TOPICBRIDGE_FIXTURES) + "/wal2json/" + name);
  REQUIRE_MESSAGE(in.good(), "missing fixture " << name);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::string_view Text(const Change& change, std::string_view column) {
  const ColumnValue* c = change.Column(column);
  REQUIRE_MESSAGE(c != nullptr, "no column " << column);
  return c->text;
}

TEST_CASE("ParseLsn and FormatLsn round-trip PostgreSQL's X/Y form") {
  CHECK(ParseLsn("0/0") == Lsn{0});
  CHECK(ParseLsn("16/B374D848") == ((Lsn{0x16} << 32) | 0xB374D848u));
  CHECK(ParseLsn("ffffffff/ffffffff") == ~Lsn{0});
  CHECK(FormatLsn((Lsn{0x16} << 32) | 0xB374D848u) == "16/B374D848");
  CHECK(FormatLsn(0x195D868) == "0/195D868");
  for (const char* bad :
       {"", "/", "0/", "/0", "0x1/2", "1/2/3", "123456789/0", "1/-2", "g/1", " 1/2"}) {
    CHECK_MESSAGE(!ParseLsn(bad).has_value(), bad);
  }
}

TEST_CASE("recorded B/I/U/D/C transactions decode with lsn, timestamp and xid") {
  const auto lines = ReadLines("transactions.jsonl");
  REQUIRE(lines.size() == 29);
  Wal2JsonDecoder decoder;
  Change change;

  REQUIRE(decoder.Decode(lines[0], &change).ok());
  CHECK(change.kind == ChangeKind::kBegin);
  CHECK(change.xid > 0);
  CHECK(change.next_lsn > change.lsn);
  CHECK(change.timestamp.size() >= 20);
  const std::uint32_t xid = change.xid;

  SUBCASE("insert with non-ASCII and escaped jsonb text") {
    REQUIRE(decoder.Decode(lines[1], &change).ok());
    CHECK(change.kind == ChangeKind::kInsert);
    CHECK(change.xid == xid);
    CHECK(change.schema == "public");
    CHECK(change.table == "patient");
    CHECK(change.columns.size() == 7);
    CHECK(change.identity.empty());
    CHECK(Text(change, "id") == "pt-1");
    CHECK(Text(change, "txid") == "1");
    CHECK(change.Column("txid")->type == "bigint");
    CHECK(Text(change, "status") == "created");
    CHECK(change.Column("ts")->type == "timestamp with time zone");
    CHECK(change.Column("resource")->type == "jsonb");
    CHECK(
        Text(change, "resource") ==
        R"({"name": [{"given": ["Jörg", "Łukasz"], "family": "Ñúñez \"quoted\" \\ back 日本語 😀"}], "gender": "male", "birthDate": "1980-01-02"})");
  }
  SUBCASE("commit carries lsn and nextlsn, equal to the begin's") {
    Change begin;
    Wal2JsonDecoder other;
    REQUIRE(other.Decode(lines[0], &begin).ok());
    REQUIRE(decoder.Decode(lines[2], &change).ok());
    CHECK(change.kind == ChangeKind::kCommit);
    CHECK(change.xid == xid);
    CHECK(change.lsn == begin.lsn);
    CHECK(change.next_lsn == begin.next_lsn);
    CHECK(lines[2].find("\"nextlsn\":\"" + FormatLsn(change.next_lsn) + "\"") != std::string::npos);
  }
}

TEST_CASE("update under REPLICA IDENTITY FULL carries the old tuple; DEFAULT only the key") {
  const auto lines = ReadLines("transactions.jsonl");
  Wal2JsonDecoder decoder;
  Change change;
  REQUIRE(decoder.Decode(lines[4], &change).ok());
  CHECK(change.kind == ChangeKind::kUpdate);
  CHECK(change.table == "patient");
  CHECK(Text(change, "txid") == "2");
  CHECK(change.identity.size() == 7);
  CHECK(change.Identity("txid")->text == "1");
  CHECK(change.Identity("status")->text == "created");
  CHECK(change.Identity("resource")->text.find("\"active\"") == std::string_view::npos);
  CHECK(Text(change, "resource").find("\"active\": true") != std::string_view::npos);

  REQUIRE(decoder.Decode(lines[5], &change).ok());
  CHECK(change.kind == ChangeKind::kInsert);
  CHECK(change.table == "patient_history");

  REQUIRE(decoder.Decode(lines[11], &change).ok());
  CHECK(change.kind == ChangeKind::kUpdate);
  CHECK(change.table == "observation");
  REQUIRE(change.identity.size() == 1);
  CHECK(change.identity[0].name == "id");
  CHECK(change.identity[0].text == "obs-1");
}

TEST_CASE("delete carries identity and no columns") {
  const auto lines = ReadLines("transactions.jsonl");
  Wal2JsonDecoder decoder;
  Change change;
  REQUIRE(decoder.Decode(lines[14], &change).ok());
  CHECK(change.kind == ChangeKind::kDelete);
  CHECK(change.table == "observation");
  CHECK(change.columns.empty());
  CHECK(change.Identity("id")->text == "obs-1");

  REQUIRE(decoder.Decode(lines[17], &change).ok());
  CHECK(change.kind == ChangeKind::kDelete);
  CHECK(change.table == "patient");
  CHECK(change.Identity("status")->text == "updated");
  CHECK(change.Identity("resource")->text.find("日本語") != std::string_view::npos);
}

TEST_CASE("numbers keep their literal, booleans and null, control characters unescaped") {
  const auto lines = ReadLines("transactions.jsonl");
  Wal2JsonDecoder decoder;
  Change change;
  REQUIRE(decoder.Decode(lines[20], &change).ok());
  CHECK(change.table == "misc");
  CHECK(Text(change, "n") == "12345678901234567890.123");
  CHECK(Text(change, "f") == "15000000000");
  CHECK(Text(change, "b") == "true");
  CHECK(Text(change, "i") == "-42");
  CHECK(change.Column("t")->is_null);
  CHECK(change.Column("t")->text.empty());
  CHECK_FALSE(change.Column("n")->is_null);

  REQUIRE(decoder.Decode(lines[21], &change).ok());
  CHECK(Text(change, "f") == "-0.25");
  CHECK(Text(change, "b") == "false");
  CHECK(Text(change, "t") == "tab\tnl\nx");
}

TEST_CASE("logical message M and truncate T") {
  const auto lines = ReadLines("transactions.jsonl");
  Wal2JsonDecoder decoder;
  Change change;
  REQUIRE(decoder.Decode(lines[24], &change).ok());
  CHECK(change.kind == ChangeKind::kMessage);
  CHECK(change.transactional);
  CHECK(change.prefix == "topicbridge");
  CHECK(change.content == "hello \"msg\"");

  REQUIRE(decoder.Decode(lines[27], &change).ok());
  CHECK(change.kind == ChangeKind::kTruncate);
  CHECK(change.table == "misc");
  CHECK_FALSE(change.transactional);  // reset from the previous message
  CHECK(change.prefix.empty());
}

TEST_CASE("update leaving a TOASTed resource alone omits it; identity FULL still has it") {
  const auto lines = ReadLines("toast_update.jsonl");
  REQUIRE(lines.size() == 12);
  Wal2JsonDecoder decoder;
  Change change;
  REQUIRE(decoder.Decode(lines[7], &change).ok());
  CHECK(change.kind == ChangeKind::kUpdate);
  CHECK(change.table == "patient");
  CHECK(change.Column("resource") == nullptr);
  CHECK(Text(change, "status") == "updated");
  REQUIRE(change.Identity("resource") != nullptr);
  CHECK(change.Identity("resource")->text.size() > 6000);

  REQUIRE(decoder.Decode(lines[10], &change).ok());
  CHECK(change.table == "observation");
  CHECK(change.Column("resource") == nullptr);
  CHECK(change.Identity("resource") == nullptr);
}

TEST_CASE("a 1 MB jsonb resource decodes to a valid JSON document") {
  const auto lines = ReadLines("large_jsonb.jsonl");
  REQUIRE(lines.size() == 3);
  Wal2JsonDecoder decoder;
  Change change;
  REQUIRE(decoder.Decode(lines[1], &change).ok());
  const std::string_view resource = Text(change, "resource");
  CHECK(resource.size() > 1'000'000);
  CHECK(resource.find(R"(\"quoted\" \\ tab\t äöü 日本 😀)") != std::string_view::npos);
  simdjson::dom::parser parser;
  simdjson::dom::element document;
  REQUIRE(parser.parse(resource.data(), resource.size()).get(document) == simdjson::SUCCESS);
  simdjson::dom::array note;
  REQUIRE(document["note"].get_array().get(note) == simdjson::SUCCESS);
  CHECK(note.size() == 12000);
  // A small message after the large one still decodes (buffers are reused, not shrunk).
  REQUIRE(decoder.Decode(lines[2], &change).ok());
  CHECK(change.kind == ChangeKind::kCommit);
}

TEST_CASE("steady-state decoding allocates nothing") {
  std::vector<std::string> lines = ReadLines("transactions.jsonl");
  for (auto& line : ReadLines("toast_update.jsonl")) lines.push_back(std::move(line));
  Wal2JsonDecoder decoder;
  Change change;
  for (const auto& line : lines) REQUIRE(decoder.Decode(line, &change).ok());  // warm up
  const long before = g_allocations.load();
  for (int round = 0; round < 3; ++round) {
    for (const auto& line : lines) REQUIRE(decoder.Decode(line, &change).ok());
  }
  CHECK(g_allocations.load() - before == 0);
}

TEST_CASE("malformed input returns a clear error and the decoder keeps working") {
  Wal2JsonDecoder decoder;
  Change change;
  const struct {
    std::string_view input;
    std::string_view expected;
  } cases[] = {
      {"", "not a JSON object"},
      {"hello", "not a JSON object"},
      {"[1,2]", "not a JSON object"},
      {R"({"action":"I","schema":"public","table":"t","columns":[{"name":"a","type":"int","value":1})",
       "bad"},
      {R"({"action":"I")", ""},
      {R"({"xid":1})", "no \"action\""},
      {R"({"action":"X"})", "unknown action 'X'"},
      {R"({"action":"BC"})", "unknown action"},
      {R"({"action":1})", "\"action\" is not a string"},
      {R"({"action":"C","lsn":"nope"})", "\"lsn\" is not an LSN: 'nope'"},
      {R"({"action":"C","xid":-1})", "\"xid\""},
      {R"({"action":"C","xid":99999999999})", "\"xid\" out of range"},
      {R"({"action":"I","columns":[]})", "without \"schema\" and \"table\""},
      {R"({"action":"I","schema":"s","table":"t","columns":{}})", "\"columns\" is not an array"},
      {R"({"action":"I","schema":"s","table":"t","columns":[1]})", "column entry is not an object"},
      {R"({"action":"I","schema":"s","table":"t","columns":[{"name":"a","value":{"x":1}}]})",
       "array or object"},
      {R"({"action":"I","schema":"s","table":"t","columns":[{"name":"a","value":12x}]})",
       "not a JSON number: '12x'"},
      {R"({"action":"I","schema":"s","table":"t","columns":[{"name":"a"}]})",
       "column \"a\" has no \"value\""},
      {R"({"action":"I","schema":"s","table":"t","columns":[{"value":1}]})", "without \"name\""},
      {R"({"action":"B"} {"action":"C"})", "trailing content"},
      {"{\"action\":\"I\",\"schema\":\"s\",\"table\":\"\xff\xfe\"}", ""},
  };
  for (const auto& c : cases) {
    const DecodeStatus status = decoder.Decode(c.input, &change);
    CHECK_MESSAGE(!status.ok(), c.input);
    CHECK_MESSAGE(status.error.find("malformed wal2json message: ") == 0, status.error);
    CHECK_MESSAGE(status.error.find(c.expected) != std::string::npos, status.error);
  }
  const auto lines = ReadLines("transactions.jsonl");
  REQUIRE(decoder.Decode(lines[1], &change).ok());
  CHECK(Text(change, "id") == "pt-1");
}

TEST_CASE("error message shows the start of a long message, not all of it") {
  Wal2JsonDecoder decoder;
  Change change;
  const std::string input = R"({"action":"Q","pad":")" + std::string(5000, 'x') + "\"}";
  const DecodeStatus status = decoder.Decode(input, &change);
  REQUIRE_FALSE(status.ok());
  CHECK(status.error.size() < 400);
  CHECK(status.error.find("...") != std::string::npos);
}

}  // namespace
}  // namespace topicbridge
