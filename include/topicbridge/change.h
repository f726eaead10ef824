// Change: one wal2json format-version 2 record, decoded without copying.
// Every string_view points into the decoder's buffers: valid only until the
// next Wal2JsonDecoder::Decode() call on the same decoder.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "topicbridge/lsn.h"

namespace topicbridge {

enum class ChangeKind : char {
  kBegin = 'B',
  kInsert = 'I',
  kUpdate = 'U',
  kDelete = 'D',
  kCommit = 'C',
  kMessage = 'M',
  kTruncate = 'T',
};

// One column of a row. `text` is the unescaped string for string-typed JSON
// values (text, jsonb, timestamptz, enums...), the literal for numbers and
// booleans, empty when is_null.
struct ColumnValue {
  std::string_view name;
  std::string_view type;
  std::string_view text;
  bool is_null = false;
};

struct Change {
  ChangeKind kind = ChangeKind::kBegin;
  std::uint32_t xid = 0;        // include-xids
  Lsn lsn = 0;                  // include-lsn: for C, start of the commit record
  Lsn next_lsn = 0;             // for B and C: end of the commit record (confirm this one)
  std::string_view timestamp;   // include-timestamp, e.g. "2026-11-25 15:50:07.123456+00"
  std::string_view schema;
  std::string_view table;
  std::vector<ColumnValue> columns;   // new tuple (I, U)
  std::vector<ColumnValue> identity;  // old key / old tuple under REPLICA IDENTITY FULL (U, D)
  // M (pg_logical_emit_message) only.
  bool transactional = false;
  std::string_view prefix;
  std::string_view content;

  // REQUIRES: the Change is still valid (see header comment). nullptr if absent.
  const ColumnValue* Column(std::string_view name) const {
    for (const auto& c : columns)
      if (c.name == name) return &c;
    return nullptr;
  }
  const ColumnValue* Identity(std::string_view name) const {
    for (const auto& c : identity)
      if (c.name == name) return &c;
    return nullptr;
  }
};

}  // namespace topicbridge
