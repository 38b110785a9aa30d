// SHA-256 for manifests: scenario hash, final-model hash, replay checks.
// Thread-safe (pure functions; Sha256 objects are not shared).
#ifndef FEDSIM_UTIL_HASH_H_
#define FEDSIM_UTIL_HASH_H_

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace fedsim {

class Sha256 {
 public:
  Sha256();
  void Update(const void* data, size_t n);
  void Update(std::string_view s) { Update(s.data(), s.size()); }
  std::array<uint8_t, 32> Finish();
  // Lower-case hex of Finish().
  std::string FinishHex();

 private:
  void Block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string Sha256Hex(std::string_view bytes);
std::string Sha256Hex(std::span<const float> values);

}  // namespace fedsim

#endif  // FEDSIM_UTIL_HASH_H_
