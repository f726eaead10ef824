// JsonWriter: appends compact JSON to a reusable std::string, managing commas,
// so that bundles and converted resources are built without a DOM.
// Not thread-safe; Clear() keeps the buffer's capacity for the next document.
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>
#include <vector>

namespace topicbridge {

class JsonWriter {
 public:
  void Clear() {
    out_.clear();
    first_.clear();
    first_.push_back(1);
  }
  JsonWriter() { Clear(); }

  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }
  // Inside an object, every value is preceded by Key().
  void Key(std::string_view key);
  void String(std::string_view value);
  void Int(long long value);
  void Bool(bool value);
  void Null();
  // A value that is already valid JSON text.
  void Raw(std::string_view json);
  // Copies a parsed simdjson element as compact JSON.
  void Element(simdjson::dom::element element);

  const std::string& str() const { return out_; }
  std::string Take() {
    std::string s = std::move(out_);
    Clear();
    return s;
  }

  static void AppendEscaped(std::string* out, std::string_view text);

 private:
  void Separate();
  void Open(char c);
  void Close(char c);

  std::string out_;
  // Per open container: 1 while no element is written yet. Bytes, not vector<bool>, whose bit
  // proxies made Separate() cost ~90 instructions a call on the hot path.
  std::vector<char> first_;
  bool after_key_ = false;
};

}  // namespace topicbridge
