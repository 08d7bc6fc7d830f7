// Re-index (decision 0050): the index entries of a step's resources extracted on worker threads
// while the step's writing thread deletes the old rows and queues the new ones in rk order.
#pragma once

#include "kakehashi/gateway/store/store.hpp"
#include "store/sql_session.hpp"

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace kakehashi::gateway::store::detail {

class ParallelExtract {
 public:
  enum class Outcome { kRows, kUnreadable, kFailed };

  // Starts `workers` threads (0: every resource is extracted by the thread calling Get) over
  // `rows`, which must outlive this object.
  ParallelExtract(const IndexDefinition& def, const std::vector<const ResourceRow*>& rows,
                  std::size_t workers);
  ~ParallelExtract();
  ParallelExtract(const ParallelExtract&) = delete;
  ParallelExtract& operator=(const ParallelExtract&) = delete;

  // The entries of rows[i] once they are extracted; the calling thread extracts the next chunks
  // itself while rows[i]'s chunk is not taken yet. kFailed: `extract` threw (out of memory).
  Outcome Get(std::size_t i, const IndexEntries*& entries);

 private:
  static constexpr std::size_t kChunk = 32;  // resources claimed at a time
  void Work();
  // Claims the next chunk and extracts it; false when every chunk was claimed.
  bool RunChunk();

  const IndexDefinition& def_;
  const std::vector<const ResourceRow*>& rows_;
  std::vector<IndexEntries> entries_;
  std::vector<Outcome> outcome_;
  std::size_t chunks_;
  std::atomic<std::size_t> next_{0};
  std::mutex mutex_;
  std::condition_variable ready_;
  std::vector<unsigned char> done_;  // by chunk, under mutex_
  std::vector<std::thread> threads_;
};

// A re-index step compares a resource's stored index rows with its new ones by these keys: equal
// keys, equal rows. Each value is written as its length, ':' and its text; numbers as SQL text
// (a REAL as the 17 significant digits of its exact value, which the stored text must give).
// QueuedRowKey: `columns` queued Params from params[first]. StoredRowKey: a row as read back,
// `real` the position of its REAL column (-1: none).
std::string QueuedRowKey(const std::vector<Param>& params, std::size_t first, std::size_t columns);
std::string StoredRowKey(const std::vector<std::string>& row, int real);

}  // namespace kakehashi::gateway::store::detail
