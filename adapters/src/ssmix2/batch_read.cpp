#include "kakehashi/adapters/ssmix2/batch_read.hpp"

#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdint>

namespace kakehashi::adapters::ssmix2 {
namespace {

// The raw system calls (no liburing in the stack: docs/decisions/0021).
int Setup(unsigned entries, io_uring_params& params) {
  return static_cast<int>(::syscall(__NR_io_uring_setup, entries, &params));
}

int Enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags) {
  return static_cast<int>(
      ::syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, nullptr, 0));
}

// BatchFileReader::Totals().
std::atomic<std::uint64_t> g_ring_batches{0}, g_ring_files{0}, g_plain_files{0};

template <class T>
T* At(void* base, std::uint32_t offset) {
  return reinterpret_cast<T*>(static_cast<char*>(base) + offset);
}

}  // namespace

// One io_uring instance: the mapped submission and completion rings, the submission entries and
// the read buffers (kMaxBatch slots of kSlot bytes, one per read of a batch).
struct BatchFileReader::Ring {
  int fd = -1;
  void* sq_map = MAP_FAILED;
  std::size_t sq_map_size = 0;
  void* cq_map = MAP_FAILED;  // == sq_map with IORING_FEAT_SINGLE_MMAP
  std::size_t cq_map_size = 0;
  io_uring_sqe* sqes = static_cast<io_uring_sqe*>(MAP_FAILED);
  std::size_t sqes_size = 0;
  unsigned *sq_tail = nullptr, *sq_mask = nullptr, *sq_array = nullptr;
  unsigned *cq_head = nullptr, *cq_tail = nullptr, *cq_mask = nullptr;
  io_uring_cqe* cqes = nullptr;
  unsigned sq_entries = 0;
  std::unique_ptr<char[]> buffers;

  ~Ring() {
    if (sqes != MAP_FAILED) ::munmap(sqes, sqes_size);
    if (cq_map != MAP_FAILED && cq_map != sq_map) ::munmap(cq_map, cq_map_size);
    if (sq_map != MAP_FAILED) ::munmap(sq_map, sq_map_size);
    if (fd >= 0) ::close(fd);
  }

  // False when the kernel refuses the ring (the caller then reads with read(2)).
  bool Open(unsigned entries) {
    io_uring_params params{};
    // Completions are only needed when this thread waits for them: no interrupting task work
    // (IORING_SETUP_DEFER_TASKRUN, Linux 6.1); older kernels refuse the flags, then none.
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    fd = Setup(entries, params);
    if (fd < 0 && errno == EINVAL) {
      params = io_uring_params{};
      fd = Setup(entries, params);
    }
    if (fd < 0) return false;
    sq_entries = params.sq_entries;
    sq_map_size = params.sq_off.array + params.sq_entries * sizeof(unsigned);
    cq_map_size = params.cq_off.cqes + params.cq_entries * sizeof(io_uring_cqe);
    const bool single = (params.features & IORING_FEAT_SINGLE_MMAP) != 0;
    if (single) sq_map_size = cq_map_size = std::max(sq_map_size, cq_map_size);
    sq_map = ::mmap(nullptr, sq_map_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                    IORING_OFF_SQ_RING);
    if (sq_map == MAP_FAILED) return false;
    cq_map = single ? sq_map
                    : ::mmap(nullptr, cq_map_size, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
    if (cq_map == MAP_FAILED) return false;
    sqes_size = params.sq_entries * sizeof(io_uring_sqe);
    sqes = static_cast<io_uring_sqe*>(::mmap(nullptr, sqes_size, PROT_READ | PROT_WRITE,
                                             MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES));
    if (sqes == MAP_FAILED) return false;
    sq_tail = At<unsigned>(sq_map, params.sq_off.tail);
    sq_mask = At<unsigned>(sq_map, params.sq_off.ring_mask);
    sq_array = At<unsigned>(sq_map, params.sq_off.array);
    cq_head = At<unsigned>(cq_map, params.cq_off.head);
    cq_tail = At<unsigned>(cq_map, params.cq_off.tail);
    cq_mask = At<unsigned>(cq_map, params.cq_off.ring_mask);
    cqes = At<io_uring_cqe>(cq_map, params.cq_off.cqes);
    // Not zero-filled: a slot's pages are touched only as far as the files read into it reach.
    buffers = std::make_unique_for_overwrite<char[]>(kMaxBatch * kSlot);
    return true;
  }

  char* Slot(std::size_t i) const { return buffers.get() + i * kSlot; }
};

BatchFileReader::BatchFileReader(bool io_uring, unsigned ring_entries) {
  if (!io_uring) return;
  auto ring = std::make_unique<Ring>();
  if (ring->Open(ring_entries) && ring->sq_entries >= kMaxBatch) ring_ = std::move(ring);
}

BatchFileReader::~BatchFileReader() = default;

BatchFileReader::Counts BatchFileReader::Totals() {
  return {g_ring_batches.load(std::memory_order_relaxed),
          g_ring_files.load(std::memory_order_relaxed),
          g_plain_files.load(std::memory_order_relaxed)};
}

std::optional<std::string> BatchFileReader::ReadOne(int fd, std::size_t limit) {
  g_plain_files.fetch_add(1, std::memory_order_relaxed);
  // One read() into a per-thread buffer gets a whole stored file (a few KB); the string is then
  // allocated at its exact size. A short read of a regular file is its end.
  thread_local std::array<char, kSlot> buffer;
  std::optional<std::string> out(std::in_place);
  while (true) {
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || out->size() + static_cast<std::size_t>(n) > limit) return std::nullopt;
    out->append(buffer.data(), static_cast<std::size_t>(n));
    if (static_cast<std::size_t>(n) < buffer.size()) return out;
  }
}

namespace {

// The rest of a file whose first `have.size()` bytes (a full slot) were read: pread from there,
// as ReadOne would have gone on.
std::optional<std::string> ReadRest(int fd, std::string have, std::size_t limit) {
  thread_local std::array<char, BatchFileReader::kSlot> buffer;
  while (true) {
    const ssize_t n = ::pread(fd, buffer.data(), buffer.size(), static_cast<off_t>(have.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || have.size() + static_cast<std::size_t>(n) > limit) return std::nullopt;
    have.append(buffer.data(), static_cast<std::size_t>(n));
    if (static_cast<std::size_t>(n) < buffer.size()) return have;
  }
}

}  // namespace

bool BatchFileReader::ReadRing(const std::vector<int>& fds, std::size_t first, std::size_t n,
                               std::size_t limit, std::vector<std::optional<std::string>>& out) {
  Ring& r = *ring_;
  // Queue the n reads (slot i for fds[first + i]), in the caller's order: they reach the block
  // layer in this order under one plug, so reads of adjacent blocks merge.
  unsigned tail = *r.sq_tail;  // only this thread writes the tail
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned index = tail & *r.sq_mask;
    io_uring_sqe& sqe = r.sqes[index];
    sqe = io_uring_sqe{};
    sqe.opcode = IORING_OP_READ;
    sqe.fd = fds[first + i];
    sqe.off = 0;
    sqe.addr = reinterpret_cast<std::uint64_t>(r.Slot(i));
    sqe.len = static_cast<std::uint32_t>(kSlot);
    sqe.user_data = i;
    r.sq_array[index] = index;
    ++tail;
  }
  std::atomic_ref<unsigned>(*r.sq_tail).store(tail, std::memory_order_release);

  std::vector<int> results(n, 0);
  std::size_t to_submit = n, done = 0;
  while (done < n) {
    const int entered = Enter(r.fd, static_cast<unsigned>(to_submit),
                              static_cast<unsigned>(n - done), IORING_ENTER_GETEVENTS);
    if (entered < 0) {
      if (errno == EINTR || errno == EAGAIN || errno == EBUSY) continue;
      // The reads already submitted may still write into the buffers: give them up (once per
      // thread, never expected) rather than reuse them, and stop using the ring.
      (void)r.buffers.release();
      ring_.reset();
      return false;
    }
    to_submit -= std::min<std::size_t>(to_submit, static_cast<std::size_t>(entered));
    unsigned head = *r.cq_head;
    const unsigned cq_tail = std::atomic_ref<unsigned>(*r.cq_tail).load(std::memory_order_acquire);
    for (; head != cq_tail; ++head) {
      const io_uring_cqe& cqe = r.cqes[head & *r.cq_mask];
      results[cqe.user_data] = cqe.res;
      ++done;
    }
    std::atomic_ref<unsigned>(*r.cq_head).store(head, std::memory_order_release);
  }

  g_ring_batches.fetch_add(1, std::memory_order_relaxed);
  std::uint64_t from_ring = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const int fd = fds[first + i];
    const int res = results[i];
    if (res >= 0) ++from_ring;
    auto& result = out[first + i];
    if (res < 0) {
      // The kernel could not do this read through the ring (an old kernel without
      // IORING_OP_READ, a FIFO, ...): read(2) decides, as without the ring.
      result = ReadOne(fd, limit);
    } else if (static_cast<std::size_t>(res) > limit) {
      result.reset();
    } else if (static_cast<std::size_t>(res) < kSlot) {
      result.emplace(r.Slot(i), static_cast<std::size_t>(res));
    } else {
      result = ReadRest(fd, std::string(r.Slot(i), kSlot), limit);
    }
  }
  g_ring_files.fetch_add(from_ring, std::memory_order_relaxed);
  return true;
}

void BatchFileReader::Read(const std::vector<int>& fds, std::size_t limit,
                           std::vector<std::optional<std::string>>& out) {
  out.assign(fds.size(), std::nullopt);
  std::size_t first = 0;
  while (ring_ != nullptr && first < fds.size()) {
    const std::size_t n = std::min(kMaxBatch, fds.size() - first);
    if (!ReadRing(fds, first, n, limit, out)) break;
    first += n;
  }
  for (; first < fds.size(); ++first) out[first] = ReadOne(fds[first], limit);
}

}  // namespace kakehashi::adapters::ssmix2
