#include "kakehashi/mapping/ids.hpp"

#include <cstdint>
#include <cstdio>

namespace kakehashi::mapping {
namespace {

// FNV-1a 64 (offset basis and prime from the FNV reference), finalised with MurmurHash3's fmix64.
// The second hash starts from a different basis so the two halves are independent.
struct Hasher {
  std::uint64_t a = 0xcbf29ce484222325ULL;
  std::uint64_t b = 0x84222325cbf29ce4ULL;
  void Add(std::string_view s) {
    for (unsigned char c : s) {
      a = (a ^ c) * 0x100000001b3ULL;
      b = (b ^ c) * 0x100000001b3ULL;
      b ^= b >> 29;
    }
  }
  void Separator() { Add("\x1f"); }
  // MurmurHash3's 64-bit finaliser: FNV alone leaves ids of similar inputs ("…301", "…302")
  // sharing most of their digits.
  static std::uint64_t Mix(std::uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
  }
  std::string Uuid() const {
    std::uint64_t hi = Mix(a);
    std::uint64_t lo = Mix(b ^ hi);
    hi = (hi & ~0xF000ULL) | 0x8000ULL;                         // version 8 (custom)
    lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // RFC 4122 variant
    char buf[37];
    std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                  static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                  static_cast<unsigned>(lo >> 48),
                  static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
    return buf;
  }
};

}  // namespace

std::string DeterministicId(const std::vector<std::string>& parts) {
  Hasher h;
  for (const auto& p : parts) {
    h.Add(p);
    h.Separator();
  }
  return h.Uuid();
}

std::string DeterministicId(std::initializer_list<std::string_view> parts) {
  Hasher h;
  for (auto p : parts) {
    h.Add(p);
    h.Separator();
  }
  return h.Uuid();
}

}  // namespace kakehashi::mapping
