// NKey helpers for NATS authentication with a bare user seed (nkeySeedFilePath):
// cnats signs the server's nonce from the seed file but needs the public key
// too, which is derived here. Secret files are also checked for loose modes.
// Internal to src/sinks. Invariant: seed bytes are wiped after use and never
// appear in any returned text.
#pragma once

#include <string>

namespace topicbridge::sinks {

// The user public key ("U...") of the first user seed ("SU...") in the file.
// Returns "" with `error` set (no key material in it) when the file cannot be
// read or holds no valid user seed.
std::string NKeyPublicKeyFromSeedFile(const std::string& path, std::string* error);

// True when others than the owner and group may read the file (mode o+r).
bool WorldReadable(const std::string& path);

}  // namespace topicbridge::sinks
