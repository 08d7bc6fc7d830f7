// The import fingerprint's file stamp (gateway/app/fingerprint.hpp): one statx(2) per file must
// give exactly what std::filesystem::file_size and last_write_time gave (0 where they fail), the
// values every checkpoint in every database was computed from, so that a database written before
// resumes without importing any unit again.
#include "fingerprint.hpp"

#include "import_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>

namespace kakehashi::app {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// What the importer computed per file before StampFile (the reference).
FileStamp Reference(const fs::path& path) {
  FileStamp stamp;
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  stamp.size = ec ? 0 : size;
  const auto time = fs::last_write_time(path, ec);
  stamp.time = ec ? 0 : time.time_since_epoch().count();
  return stamp;
}

// The fingerprint of one file as the importer took it before StampFile.
std::string ReferencePrint(const fs::path& path, const std::string& name) {
  Fingerprint print;
  print.Add(name);
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  print.Add(std::to_string(ec ? 0 : size));
  const auto time = fs::last_write_time(path, ec);
  print.Add(std::to_string(ec ? 0 : time.time_since_epoch().count()));
  return print.Hex();
}

// Sets the modification time (seconds since 1970, nanoseconds), not following a link.
void SetTime(const fs::path& path, std::int64_t seconds, long nanoseconds) {
  struct timespec times[2];
  times[0].tv_sec = 0;
  times[0].tv_nsec = UTIME_OMIT;
  times[1].tv_sec = static_cast<time_t>(seconds);
  times[1].tv_nsec = nanoseconds;
  REQUIRE(::utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW) == 0);
}

TEST_CASE("import: a file's stamp is what std::filesystem gave the fingerprint",
          "[import][fingerprint]") {
  TempDir dir("kakehashi-stamp-");
  const fs::path file = dir.path / "file";
  std::ofstream(file, std::ios::binary) << "MSH|^~\\&|";
  const fs::path empty = dir.path / "empty";
  std::ofstream(empty, std::ios::binary).flush();
  const fs::path folder = dir.path / "folder";
  fs::create_directories(folder);
  const fs::path link = dir.path / "link";
  fs::create_symlink(file, link);
  const fs::path dangling = dir.path / "dangling";
  fs::create_symlink(dir.path / "nowhere", dangling);
  const fs::path fifo = dir.path / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);

  auto same = [&](const fs::path& path) {
    INFO(path.filename().string());
    const FileStamp now = StampFile(path);
    const FileStamp before = Reference(path);
    CHECK(now.size == before.size);
    CHECK(now.time == before.time);
    CHECK(ReferencePrint(path, "name") == [&] {
      Fingerprint print;
      print.AddFile(path, "name");
      return print.Hex();
    }());
  };
  for (const fs::path& path : {file, empty, folder, link, dangling, fifo, dir.path / "missing"}) {
    same(path);
  }
  CHECK(StampFile(file).size == 9);
  CHECK(StampFile(file).time != 0);
  CHECK(StampFile(dir.path / "missing").time == 0);

  // Modification times across the range a store may hold, to the nanosecond: before 1970, the
  // epoch, now, and the ends of the range StampFile converts itself (1902, 2223) and past them
  // (where it asks the library, which fails past 2262: 0).
  for (std::int64_t seconds :
       {std::int64_t{-315619200}, std::int64_t{0}, std::int64_t{1}, std::int64_t{1796159724},
        -(std::int64_t{1} << 31), -(std::int64_t{1} << 31) - 1, std::int64_t{8'000'000'000},
        std::int64_t{8'000'000'001}, std::int64_t{9'223'372'036}, std::int64_t{10'413'792'000}}) {
    for (long nanoseconds : {0L, 1L, 123456789L, 999999999L}) {
      INFO(seconds << "." << nanoseconds);
      SetTime(file, seconds, nanoseconds);
      struct stat st {};
      REQUIRE(::stat(file.c_str(), &st) == 0);
      if (st.st_mtim.tv_sec != seconds) continue;  // the filesystem cannot hold it
      same(file);
    }
  }
}

}  // namespace
}  // namespace kakehashi::app
