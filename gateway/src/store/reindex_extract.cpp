#include "store/reindex_extract.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace kakehashi::gateway::store::detail {

ParallelExtract::ParallelExtract(const IndexDefinition& def,
                                 const std::vector<const ResourceRow*>& rows, std::size_t workers)
    : def_(def),
      rows_(rows),
      entries_(rows.size()),
      outcome_(rows.size(), Outcome::kFailed),
      chunks_((rows.size() + kChunk - 1) / kChunk),
      done_(chunks_, 0) {
  workers = std::min(workers, chunks_ > 0 ? chunks_ - 1 : 0);
  threads_.reserve(workers);
  for (std::size_t w = 0; w < workers; ++w) threads_.emplace_back([this] { Work(); });
}

ParallelExtract::~ParallelExtract() {
  next_.store(chunks_);  // nothing more is claimed: the workers end after their current chunk
  for (std::thread& t : threads_) t.join();
}

void ParallelExtract::Work() {
  while (RunChunk()) {
  }
}

bool ParallelExtract::RunChunk() {
  const std::size_t chunk = next_.fetch_add(1);
  if (chunk >= chunks_) return false;
  const std::size_t end = std::min(rows_.size(), (chunk + 1) * kChunk);
  for (std::size_t i = chunk * kChunk; i < end; ++i) {
    try {
      outcome_[i] = def_.extract(*rows_[i], entries_[i]) ? Outcome::kRows : Outcome::kUnreadable;
    } catch (...) {  // std::bad_alloc: the step fails (and is rolled back), nothing is lost
      outcome_[i] = Outcome::kFailed;
    }
  }
  {
    std::lock_guard lock(mutex_);
    done_[chunk] = 1;
  }
  ready_.notify_all();
  return true;
}

ParallelExtract::Outcome ParallelExtract::Get(std::size_t i, const IndexEntries*& entries) {
  const std::size_t chunk = i / kChunk;
  std::unique_lock lock(mutex_);
  while (!done_[chunk]) {
    if (next_.load() <= chunk) {
      // Not taken yet (no workers, or they are behind): extract it here.
      lock.unlock();
      RunChunk();
      lock.lock();
    } else {
      ready_.wait(lock);
    }
  }
  entries = &entries_[i];
  return outcome_[i];
}

namespace {

void AppendValue(std::string& key, std::string_view text) {
  key += std::to_string(text.size());
  key += ':';
  key += text;
}

void AppendReal(std::string& key, double value) {
  char text[40];
  const int n = std::snprintf(text, sizeof text, "%.17g", value);
  AppendValue(key, std::string_view(text, n > 0 ? static_cast<std::size_t>(n) : 0));
}

}  // namespace

std::string QueuedRowKey(const std::vector<Param>& params, std::size_t first, std::size_t columns) {
  std::string key;
  for (std::size_t c = first; c < first + columns; ++c) {
    const Param& v = params[c];
    if (const auto* text = std::get_if<std::string>(&v)) {
      AppendValue(key, *text);
    } else if (const auto* number = std::get_if<std::int64_t>(&v)) {
      AppendValue(key, std::to_string(*number));
    } else {
      AppendReal(key, std::get<double>(v));
    }
  }
  return key;
}

std::string StoredRowKey(const std::vector<std::string>& row, int real) {
  std::string key;
  for (std::size_t c = 0; c < row.size(); ++c) {
    if (static_cast<int>(c) == real) {
      AppendReal(key, std::strtod(row[c].c_str(), nullptr));
    } else {
      AppendValue(key, row[c]);
    }
  }
  return key;
}

}  // namespace kakehashi::gateway::store::detail
