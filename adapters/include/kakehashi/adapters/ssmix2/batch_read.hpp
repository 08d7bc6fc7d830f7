// Reads the bytes of many small open files at once (StorageReader::Preload: the stored files of
// one patient folder). docs/decisions/0021-cold-store-batched-reads.md.
//
// On a cold page cache every stored file costs the disk one request; the files of a patient lie
// next to each other on disk (a file system allocates the blocks of files written one after the
// other together), but one read() per file sends them one request at a time. BatchFileReader
// hands all reads of a batch to the kernel in one io_uring_enter(2) call: they are submitted
// under one block-layer plug, in the order given (callers sort by inode number, which follows
// the files' creation and so their blocks), so adjacent blocks merge into one larger request,
// and the thread sleeps once per batch instead of once per file.
//
// io_uring is used through its system calls (<linux/io_uring.h>; no liburing). When the kernel
// refuses it (io_uring_setup fails: an old kernel, io_uring_disabled, a seccomp filter) or a read
// comes back with an error, the files are read with plain read(2) calls, one after another: the
// bytes (and which files yield none) are the same either way.
//
// Not thread-safe: one BatchFileReader per thread (it owns a ring and buffers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kakehashi::adapters::ssmix2 {

class BatchFileReader {
 public:
  // At most kMaxBatch reads per submission (larger batches are split); each gets a kSlot-byte
  // buffer (a file that fills it is read on with pread).
  static constexpr std::size_t kMaxBatch = 32;
  static constexpr std::size_t kSlot = 64 * 1024;

  // `io_uring` false: plain reads only. `ring_entries` is the submission queue size asked of
  // io_uring_setup (tests pass 0, which the kernel refuses, to take the fallback).
  explicit BatchFileReader(bool io_uring = true, unsigned ring_entries = kMaxBatch);
  ~BatchFileReader();
  BatchFileReader(const BatchFileReader&) = delete;
  BatchFileReader& operator=(const BatchFileReader&) = delete;

  // True when reads go through io_uring (the ring was set up and has not failed).
  bool UsingIoUring() const { return ring_ != nullptr; }

  // Reads each open file descriptor `fds[i]` from offset 0 to its end into `out[i]`
  // (out.size() == fds.size()): nullopt when the read fails or the file is longer than `limit`
  // bytes. A short read is the end of the file (regular files). The descriptors stay open.
  void Read(const std::vector<int>& fds, std::size_t limit,
            std::vector<std::optional<std::string>>& out);

  // The same for one descriptor with read(2) calls (the fallback; also StorageReader's path
  // when batching is off).
  static std::optional<std::string> ReadOne(int fd, std::size_t limit);

  // What every BatchFileReader of the process did so far (relaxed counters, for tests and
  // figures: which path the reads took): io_uring submissions, files whose bytes came from an
  // io_uring completion, and ReadOne calls (the plain path and the fallback).
  struct Counts {
    std::uint64_t ring_batches = 0;
    std::uint64_t ring_files = 0;
    std::uint64_t plain_files = 0;
  };
  static Counts Totals();

 private:
  struct Ring;
  // Submits fds[first, first + n) and waits for them; false when the ring failed (it is then
  // closed and the caller reads the rest with ReadOne).
  bool ReadRing(const std::vector<int>& fds, std::size_t first, std::size_t n, std::size_t limit,
                std::vector<std::optional<std::string>>& out);

  std::unique_ptr<Ring> ring_;
};

}  // namespace kakehashi::adapters::ssmix2
