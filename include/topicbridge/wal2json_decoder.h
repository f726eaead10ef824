// Wal2JsonDecoder: parses one wal2json format-version 2 message (one JSON object per change)
// into a Change without copying strings out of its own buffers. Decode() never throws and never
// crashes on malformed input: it returns an error value naming the problem.
// Not thread-safe; use one decoder per pipeline thread. Not copyable (owns the simdjson parser).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "topicbridge/change.h"

namespace topicbridge {

// Result of one Decode(). `error` is empty on success; it only allocates on failure.
struct DecodeStatus {
  std::string error;
  bool ok() const { return error.empty(); }
};

class Wal2JsonDecoder {
 public:
  Wal2JsonDecoder();
  ~Wal2JsonDecoder();
  Wal2JsonDecoder(const Wal2JsonDecoder&) = delete;
  Wal2JsonDecoder& operator=(const Wal2JsonDecoder&) = delete;

  // Parses `message` (one line of wal2json output) into *change, overwriting every member.
  // The message is copied into a padded buffer owned by the decoder, so `message` need not
  // outlive the call. Every string_view in *change points into the decoder: valid only until
  // the next Decode() on this decoder. Reuse the same Change across calls: its vectors keep
  // their capacity, so steady-state decoding allocates nothing.
  // On error *change is left in an unspecified (but destructible, reusable) state.
  DecodeStatus Decode(std::string_view message, Change* change);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace topicbridge
