#include "nkey.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <vector>

namespace topicbridge::sinks {

namespace {

constexpr unsigned char kPrefixSeed = 18 << 3;
constexpr unsigned char kPrefixUser = 20 << 3;
constexpr char kBase32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

// CRC-16/XMODEM, as the nkeys encoding uses.
std::uint16_t Crc16(const unsigned char* data, std::size_t size) {
  std::uint16_t crc = 0;
  for (std::size_t i = 0; i < size; ++i) {
    crc ^= static_cast<std::uint16_t>(data[i]) << 8;
    for (int bit = 0; bit < 8; ++bit) {
      crc = (crc & 0x8000) ? static_cast<std::uint16_t>((crc << 1) ^ 0x1021)
                           : static_cast<std::uint16_t>(crc << 1);
    }
  }
  return crc;
}

bool Base32Decode(const std::string& text, std::vector<unsigned char>* out) {
  unsigned buffer = 0;
  int bits = 0;
  for (char c : text) {
    const char* at = std::char_traits<char>::find(kBase32, 32, c);
    if (at == nullptr) return false;
    buffer = (buffer << 5) | static_cast<unsigned>(at - kBase32);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<unsigned char>((buffer >> bits) & 0xff));
    }
  }
  return true;
}

std::string Base32Encode(const std::vector<unsigned char>& data) {
  std::string out;
  unsigned buffer = 0;
  int bits = 0;
  for (unsigned char byte : data) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += kBase32[(buffer >> bits) & 31];
    }
  }
  if (bits > 0) out += kBase32[(buffer << (5 - bits)) & 31];
  return out;
}

// The first whitespace-separated token that looks like a user seed.
std::string FindUserSeed(const std::string& path, std::string* error) {
  std::ifstream file(path);
  if (!file) {
    *error = "cannot read nkey seed file " + path;
    return "";
  }
  std::string token;
  while (file >> token) {
    if (token.size() == 58 && token.starts_with("SU")) return token;
  }
  *error = "no user nkey seed (a 58-character line starting with SU) in " + path;
  return "";
}

}  // namespace

std::string NKeyPublicKeyFromSeedFile(const std::string& path, std::string* error) {
  std::string seed_text = FindUserSeed(path, error);
  if (seed_text.empty()) return "";
  std::vector<unsigned char> raw;
  const bool decoded = Base32Decode(seed_text, &raw);
  OPENSSL_cleanse(seed_text.data(), seed_text.size());
  std::string public_key;
  if (decoded && raw.size() == 36 && Crc16(raw.data(), 34) == (raw[34] | (raw[35] << 8)) &&
      (raw[0] & 0xf8) == kPrefixSeed &&
      static_cast<unsigned char>(((raw[0] & 7) << 5) | (raw[1] >> 3)) == kPrefixUser) {
    EVP_PKEY* key = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nullptr, raw.data() + 2, 32);
    std::array<unsigned char, 32> pub{};
    std::size_t pub_size = pub.size();
    if (key != nullptr && EVP_PKEY_get_raw_public_key(key, pub.data(), &pub_size) == 1) {
      std::vector<unsigned char> encoded{kPrefixUser};
      encoded.insert(encoded.end(), pub.begin(), pub.end());
      const std::uint16_t crc = Crc16(encoded.data(), encoded.size());
      encoded.push_back(static_cast<unsigned char>(crc & 0xff));
      encoded.push_back(static_cast<unsigned char>(crc >> 8));
      public_key = Base32Encode(encoded);
    }
    EVP_PKEY_free(key);
  }
  OPENSSL_cleanse(raw.data(), raw.size());
  if (public_key.empty()) *error = "the user nkey seed in " + path + " is not valid";
  return public_key;
}

bool WorldReadable(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && (st.st_mode & S_IROTH) != 0;
}

}  // namespace topicbridge::sinks
