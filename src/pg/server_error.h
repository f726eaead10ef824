// Turns libpq / server error text met while connecting a replication stream into one message
// that names the problem and what to do, and says whether a retry alone could fix it.
// Internal to src/pg.
#pragma once

#include <string>
#include <string_view>

namespace topicbridge::pg {

struct ExplainedError {
  std::string message;
  bool permanent = false;
};

// `step` names what was being done ("connecting to 127.0.0.1:5432", "creating slot x");
// `server_text` is PQerrorMessage / PQresultErrorMessage, kept verbatim (trimmed) at the end.
ExplainedError ExplainServerError(std::string_view step, std::string_view server_text,
                                  std::string_view slot);

// libpq / server text on one line: line breaks and the indentation after them become one
// space, trailing whitespace is dropped (libpq messages end with "\n").
std::string OneLine(std::string_view text);

}  // namespace topicbridge::pg
