#include "topicbridge/json_writer.h"

#include <charconv>
#include <cstdint>
#include <cstring>

namespace topicbridge {

void JsonWriter::Separate() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  char& first = first_.back();
  if (!first) out_ += ',';
  first = 0;
}

void JsonWriter::Open(char c) {
  Separate();
  out_ += c;
  first_.push_back(1);
}

void JsonWriter::Close(char c) {
  out_ += c;
  if (first_.size() > 1) first_.pop_back();
}

void JsonWriter::Key(std::string_view key) {
  Separate();
  out_ += '"';
  AppendEscaped(&out_, key);
  out_ += "\":";
  after_key_ = true;
}

void JsonWriter::String(std::string_view value) {
  Separate();
  out_ += '"';
  AppendEscaped(&out_, value);
  out_ += '"';
}

void JsonWriter::Int(long long value) {
  Separate();
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out_.append(buf, end);
}

void JsonWriter::Bool(bool value) {
  Separate();
  out_ += value ? "true" : "false";
}

void JsonWriter::Null() {
  Separate();
  out_ += "null";
}

void JsonWriter::Raw(std::string_view json) {
  Separate();
  out_ += json;
}

void JsonWriter::Element(simdjson::dom::element element) {
  using simdjson::dom::element_type;
  switch (element.type()) {
    case element_type::OBJECT: {
      // Copy out of the simdjson_result first: value_unsafe() on a temporary
      // returns a reference into that temporary.
      const simdjson::dom::object object = element.get_object().value_unsafe();
      BeginObject();
      for (auto field : object) {
        Key(field.key);
        Element(field.value);
      }
      EndObject();
      break;
    }
    case element_type::ARRAY: {
      const simdjson::dom::array array = element.get_array().value_unsafe();
      BeginArray();
      for (auto item : array) Element(item);
      EndArray();
      break;
    }
    case element_type::STRING:
      String(element.get_string().value_unsafe());
      break;
    case element_type::BOOL:
      Bool(element.get_bool().value_unsafe());
      break;
    case element_type::NULL_VALUE:
      Null();
      break;
    default:
      // Numbers: simdjson's minifier keeps the shortest round-tripping text.
      Raw(simdjson::minify(element));
      break;
  }
}

namespace {

// True when one of the 8 bytes of `word` must be escaped: below 0x20, '"' or '\\'. The
// "has a byte below n" bit trick (exact as a yes/no answer); lets AppendEscaped skip plain text
// 8 bytes at a time, where a byte-by-byte loop cost ~8 instructions a byte.
bool NeedsEscape(std::uint64_t word) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
  const std::uint64_t quote = word ^ (kOnes * '"');
  const std::uint64_t backslash = word ^ (kOnes * '\\');
  return (((word - kOnes * 0x20) & ~word) | ((quote - kOnes) & ~quote) |
          ((backslash - kOnes) & ~backslash)) &
         kHighs;
}

// True when some byte of `text` must be escaped. Whole words, then the last 8 bytes again
// (overlapping); a text under 8 bytes is shifted into a word of 'a's.
bool NeedsEscape(std::string_view text) {
  std::uint64_t word = 0x6161616161616161ULL;
  if (text.size() < sizeof word) {
    for (const char c : text) word = word << 8 | static_cast<unsigned char>(c);
    return NeedsEscape(word);
  }
  for (std::size_t i = 0; i + sizeof word <= text.size(); i += sizeof word) {
    std::memcpy(&word, text.data() + i, sizeof word);
    if (NeedsEscape(word)) return true;
  }
  std::memcpy(&word, text.data() + text.size() - sizeof word, sizeof word);
  return NeedsEscape(word);
}

}  // namespace

void JsonWriter::AppendEscaped(std::string* out, std::string_view text) {
  // Keys and values almost never need escaping: then one append, without a byte loop.
  if (!NeedsEscape(text)) {
    out->append(text);
    return;
  }
  static const char kHex[] = "0123456789abcdef";
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (i + 8 <= text.size()) {
      std::uint64_t word;
      std::memcpy(&word, text.data() + i, sizeof word);
      if (!NeedsEscape(word)) {
        i += 7;  // the loop adds the eighth
        continue;
      }
    }
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"':
        *out += "\\\"";
        break;
      case '\\':
        *out += "\\\\";
        break;
      case '\n':
        *out += "\\n";
        break;
      case '\r':
        *out += "\\r";
        break;
      case '\t':
        *out += "\\t";
        break;
      case '\b':
        *out += "\\b";
        break;
      case '\f':
        *out += "\\f";
        break;
      default:
        *out += "\\u00";
        *out += kHex[c >> 4];
        *out += kHex[c & 15];
    }
  }
  out->append(text.data() + run, text.size() - run);
}

}  // namespace topicbridge
