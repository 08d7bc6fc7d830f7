#include "kakehashi/adapters/ssmix2/batch_read.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace fs = std::filesystem;
using kakehashi::adapters::ssmix2::BatchFileReader;

namespace {

// A temporary folder of files, removed (with the descriptors opened from it) at scope exit.
class Files {
 public:
  Files() {
    static std::atomic<int> counter{0};
    dir_ = fs::temp_directory_path() /
           ("kakehashi_batch_read_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~Files() {
    for (int fd : fds_) ::close(fd);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Writes the next file ("0", "1", ...).
  fs::path Add(const std::string& content) {
    const fs::path path = dir_ / std::to_string(count_++);
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  // Opens a file as StorageReader does (read-only, non-blocking).
  int Open(const fs::path& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    REQUIRE(fd >= 0);
    fds_.push_back(fd);
    return fd;
  }
  const fs::path& Dir() const { return dir_; }

 private:
  fs::path dir_;
  int count_ = 0;
  std::vector<int> fds_;
};

// Distinct bytes at every position, so a slot mix-up or a wrong offset shows.
std::string Content(std::size_t size, int seed) {
  std::string out(size, '\0');
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>('A' + (i * 7 + seed) % 53);
  return out;
}

}  // namespace

TEST_CASE("batch read: io_uring is set up unless asked not to or refused", "[ssmix2]") {
  CHECK_FALSE(BatchFileReader(false).UsingIoUring());
  // io_uring_setup refuses a ring of 0 entries (EINVAL): the reader falls back to read(2).
  CHECK_FALSE(BatchFileReader(true, 0).UsingIoUring());
  BatchFileReader ring;
  if (!ring.UsingIoUring()) WARN("io_uring is not available here: only the fallback is tested");
}

TEST_CASE("batch read: every file's bytes, with io_uring, without, and after a refused setup",
          "[ssmix2]") {
  Files files;
  // Sizes around the slot (one read fills it: the rest is read with pread) and the batch size
  // (more files than one submission holds).
  const std::size_t slot = BatchFileReader::kSlot;
  std::vector<std::size_t> sizes = {0, 1, 4500, slot - 1, slot, slot + 1, 3 * slot + 17};
  while (sizes.size() < BatchFileReader::kMaxBatch + 5) sizes.push_back(100 * sizes.size());
  std::vector<fs::path> paths;
  std::vector<std::string> expected;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    expected.push_back(Content(sizes[i], static_cast<int>(i)));
    paths.push_back(files.Add(expected.back()));
  }
  BatchFileReader ring, plain(false), refused(true, 0);
  const bool have_ring = ring.UsingIoUring();
  for (BatchFileReader* reader : {&ring, &plain, &refused}) {
    CAPTURE(reader->UsingIoUring());
    std::vector<int> fds;  // fresh descriptors: read(2) moves their offsets
    for (const auto& path : paths) fds.push_back(files.Open(path));
    std::vector<std::optional<std::string>> out;
    reader->Read(fds, 1 << 20, out);
    REQUIRE(out.size() == fds.size());
    for (std::size_t i = 0; i < fds.size(); ++i) {
      CAPTURE(i, sizes[i]);
      REQUIRE(out[i]);
      CHECK(*out[i] == expected[i]);
    }
  }
  // The bytes came through the ring, not a silent fall back to read(2) after a failed
  // submission (which gives the same bytes).
  CHECK(ring.UsingIoUring() == have_ring);
  // The ring reads from offset 0 and leaves the descriptors' offsets alone: a second batch of
  // the same descriptors gives the same bytes (a ring reused across batches).
  if (ring.UsingIoUring()) {
    std::vector<int> fds;
    for (const auto& path : paths) fds.push_back(files.Open(path));
    std::vector<std::optional<std::string>> first, again;
    ring.Read(fds, 1 << 20, first);
    ring.Read(fds, 1 << 20, again);
    CHECK(again == first);
    CHECK(first.back() == expected.back());
    CHECK(ring.UsingIoUring());
  }
}

TEST_CASE("batch read: a file over the limit, a folder and a FIFO read as plain reads do",
          "[ssmix2]") {
  Files files;
  files.Add("MSH|^~\\&|\r");
  files.Add(std::string(10000, 'x'));
  files.Add(std::string(BatchFileReader::kSlot + 5, 'y'));
  const fs::path fifo = files.Dir() / "fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  BatchFileReader ring, plain(false);
  for (BatchFileReader* reader : {&ring, &plain}) {
    CAPTURE(reader->UsingIoUring());
    const std::vector<int> fds = {
        files.Open(files.Dir() / "0"), files.Open(files.Dir() / "1"), files.Open(files.Dir() / "2"),
        files.Open(files.Dir()),  // read(2) of a folder: EISDIR
        files.Open(fifo)};        // non-blocking, no writer: end of file at once
    std::vector<std::optional<std::string>> out;
    reader->Read(fds, 9000, out);
    REQUIRE(out.size() == 5);
    REQUIRE(out[0]);
    CHECK(*out[0] == "MSH|^~\\&|\r");
    CHECK_FALSE(out[1]);  // 10,000 bytes > 9,000
    CHECK_FALSE(out[2]);  // over the limit after more than one slot
    CHECK_FALSE(out[3]);
    REQUIRE(out[4]);
    CHECK(out[4]->empty());
  }
  // The fallback for one descriptor is what the ring's failed reads use.
  CHECK_FALSE(BatchFileReader::ReadOne(files.Open(files.Dir()), 9000));
  CHECK(BatchFileReader::ReadOne(files.Open(files.Dir() / "0"), 9000) == "MSH|^~\\&|\r");
}
