#include "kakehashi/mapping/ids.hpp"

#include <cstdint>

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
    // "%08x-%04x-%04x-%04x-%012llx" of hi>>32, hi>>16, hi, lo>>48, lo: the 16 hex digits of hi
    // then those of lo, with the dashes (written by hand: snprintf cost more than the hashing).
    std::string out(36, '-');
    static constexpr char kHex[] = "0123456789abcdef";
    static constexpr int kHiAt[16] = {0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17};
    static constexpr int kLoAt[16] = {19, 20, 21, 22, 24, 25, 26, 27,
                                      28, 29, 30, 31, 32, 33, 34, 35};
    for (int i = 0; i < 16; ++i) {
      out[kHiAt[i]] = kHex[(hi >> (60 - 4 * i)) & 0xF];
      out[kLoAt[i]] = kHex[(lo >> (60 - 4 * i)) & 0xF];
    }
    return out;
  }
};

}  // namespace

void IdBuilder::Add(std::string_view part) {
  Hasher h;
  h.a = a_;
  h.b = b_;
  h.Add(part);
  h.Separator();
  a_ = h.a;
  b_ = h.b;
}

std::string IdBuilder::Id() const {
  Hasher h;
  h.a = a_;
  h.b = b_;
  return h.Uuid();
}

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
