#include "topicbridge/json_writer.h"

#include <doctest/doctest.h>

using topicbridge::JsonWriter;

TEST_CASE("writer places commas and escapes control characters") {
  JsonWriter w;
  w.BeginObject();
  w.Key("a");
  w.String("x\"y\\z\n\x01");
  w.Key("b");
  w.BeginArray();
  w.Int(-3);
  w.Bool(true);
  w.Null();
  w.BeginObject();
  w.EndObject();
  w.EndArray();
  w.EndObject();
  CHECK(w.str() == R"({"a":"x\"y\\z\n\u0001","b":[-3,true,null,{}]})");
}

TEST_CASE("a parsed element round-trips, non-ASCII text unchanged") {
  simdjson::dom::parser parser;
  const std::string doc =
      R"({"name":[{"given":["Zoë","Łukasz"]}],"n":1.50,"big":12345678901234,"t":false})";
  auto element = parser.parse(doc).value();
  JsonWriter w;
  w.Element(element);
  simdjson::dom::parser again;
  auto reparsed = again.parse(w.str()).value();
  CHECK(simdjson::minify(reparsed) == simdjson::minify(element));
  CHECK(w.str().find("Zoë") != std::string::npos);
}

TEST_CASE("Take leaves the writer ready for the next document") {
  JsonWriter w;
  w.BeginArray();
  w.Int(1);
  w.EndArray();
  CHECK(w.Take() == "[1]");
  w.BeginArray();
  w.Int(2);
  w.EndArray();
  CHECK(w.str() == "[2]");
}

TEST_CASE("escaping finds special characters at every position of long plain text") {
  // AppendEscaped checks 8 bytes at a time: put each special character at each offset of texts
  // of many lengths, and check plain texts of every length come out unchanged.
  const std::string plain = "abcdefghijklmnopqrstuvwxyz\xc3\xa9~ ";  // 30 bytes, none special
  const std::string specials[] = {"\"", "\\", "\n", std::string(1, '\x1f'), std::string(1, '\0')};
  const std::string expected[] = {"\\\"", "\\\\", "\\n", "\\u001f", "\\u0000"};
  for (std::size_t s = 0; s < std::size(specials); ++s) {
    for (std::size_t at = 0; at < 20; ++at) {
      for (std::size_t after = 0; after < 11; ++after) {  // short texts too: a padded last word
        std::string text = plain.substr(0, at) + specials[s] + plain.substr(at, after);
        std::string out = "x";
        JsonWriter::AppendEscaped(&out, text);
        CHECK(out == "x" + plain.substr(0, at) + expected[s] + plain.substr(at, after));
      }
    }
  }
  for (std::size_t n = 0; n <= plain.size(); ++n) {
    std::string out;
    JsonWriter::AppendEscaped(&out, plain.substr(0, n));
    CHECK(out == plain.substr(0, n));
  }
}
