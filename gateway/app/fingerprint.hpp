// The import fingerprint (importer.cpp): FNV-1a 64 over the names, sizes and modification times
// of a unit's files, stored as a unit's checkpoint (docs/gateway.md "Resumable"). A change
// detector, not a security property.
//
// Its values are part of every database an import wrote: a resumed import skips a unit only when
// the value it computes equals the stored one, so the bytes hashed per file must stay the ones
// the first release hashed — the name, then the decimal size std::filesystem::file_size gives
// (0 when it fails: not a regular file, missing), then the decimal count of
// std::filesystem::last_write_time (0 when it fails) — or every unit of every database would be
// imported again. StampFile takes both from one statx(2) call instead of two stat(2) calls
// (half the system calls of a resumed import's walk, docs/performance.md "Import: start and
// resume"); tests/import/fingerprint_test.cpp checks it against the std::filesystem calls.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace kakehashi::app {

// A file's size and modification time exactly as the fingerprint has always hashed them:
// `size` as std::filesystem::file_size (0 when that fails), `time` as
// std::filesystem::last_write_time(...).time_since_epoch().count() (0 when that fails).
struct FileStamp {
  std::uintmax_t size = 0;
  std::int64_t time = 0;
};
FileStamp StampFile(const std::filesystem::path& path);

class Fingerprint {
 public:
  void Add(std::string_view bytes) {
    for (unsigned char c : bytes) {
      h_ ^= c;
      h_ *= 1099511628211ULL;
    }
    h_ ^= 0xff;  // field separator
    h_ *= 1099511628211ULL;
  }
  // The file's name (as given: root-relative), size and modification time (StampFile).
  void AddFile(const std::filesystem::path& path, std::string_view name) {
    Add(name);
    const FileStamp stamp = StampFile(path);
    Add(std::to_string(stamp.size));
    Add(std::to_string(stamp.time));
  }
  std::uint64_t Value() const { return h_; }
  std::string Hex() const {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out(16, '0');
    std::uint64_t v = h_;
    for (int i = 15; i >= 0; --i) {
      out[static_cast<std::size_t>(i)] = kDigits[v & 0xF];
      v >>= 4;
    }
    return out;
  }

 private:
  std::uint64_t h_ = 1469598103934665603ULL;
};

}  // namespace kakehashi::app
