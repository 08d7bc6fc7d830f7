// StampFile (fingerprint.hpp): one statx(2) per file for what std::filesystem::file_size and
// last_write_time told with a stat(2) each.
#include "fingerprint.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <chrono>
#include <system_error>

namespace kakehashi::app {

namespace {

namespace fs = std::filesystem;

// The two calls the fingerprint was first taken with (and still is, where statx cannot tell).
FileStamp StampSlow(const fs::path& path) {
  FileStamp stamp;
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  if (!ec) stamp.size = size;
  const auto time = fs::last_write_time(path, ec);
  if (!ec) stamp.time = time.time_since_epoch().count();
  return stamp;
}

}  // namespace

FileStamp StampFile(const fs::path& path) {
  struct statx st {};
  // Symbolic links followed, as stat(2) (and so std::filesystem) does.
  if (::statx(AT_FDCWD, path.c_str(), AT_STATX_SYNC_AS_STAT, STATX_TYPE | STATX_SIZE | STATX_MTIME,
              &st) != 0) {
    // Missing or unreadable: both std::filesystem calls fail too (0 and 0). Any other error
    // (statx refused by a syscall filter: EPERM, ENOSYS) must not stamp every file 0/0, which
    // would hide changed files from the resume: the library's calls decide.
    return StampSlow(path);
  }
  constexpr unsigned kNeeded = STATX_TYPE | STATX_SIZE | STATX_MTIME;
  // The conversion below is exact (no overflow) for times from 1902 to 2223; outside that range
  // (or when the filesystem did not fill a field in) the library decides, as it always did.
  const std::int64_t sec = st.stx_mtime.tv_sec;
  if ((st.stx_mask & kNeeded) != kNeeded || sec < -(std::int64_t{1} << 31) || sec > 8'000'000'000) {
    return StampSlow(path);
  }
  FileStamp stamp;
  // file_size: the size of a regular file; an error (0 here) for a directory or anything else.
  if (S_ISREG(st.stx_mode)) stamp.size = st.stx_size;
  // last_write_time: the library's file clock from the time since the Unix epoch (libstdc++'s
  // file clock has another epoch, so this is not simply the nanoseconds since 1970).
  using namespace std::chrono;
  const sys_time<nanoseconds> since_unix{duration_cast<nanoseconds>(seconds{sec}) +
                                         nanoseconds{st.stx_mtime.tv_nsec}};
  stamp.time = fs::file_time_type::clock::from_sys(since_unix).time_since_epoch().count();
  return stamp;
}

}  // namespace kakehashi::app
