// Sinks that receive Issues. Producers (parsers, mappers, validators) take an IssueSink& and never
// decide what happens to a problem: the caller injects the policy.
//
//   FailFastSink    tests and strict runs: remembers the first issue at or above a threshold and
//                   asks producers to stop (StopRequested()).
//   CollectingSink  keeps every issue (→ OperationOutcome, MLLP NAK, the convert summary).
//   RejectStore     keeps the raw bytes of a rejected record on disk for replay, with a sidecar
//                   listing the issues; a bad record never stops a batch.
//
// Thread-safety: none of the sinks is thread-safe; give each worker its own and merge.
#pragma once

#include "kakehashi/common/issue.hpp"
#include "kakehashi/common/result.hpp"

#include <array>
#include <cstddef>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi {

class IssueSink {
 public:
  virtual ~IssueSink() = default;
  virtual void Report(Issue issue) = 0;
  // Producers poll this at record boundaries and stop early when it is true.
  virtual bool StopRequested() const { return false; }

  // Whether the sink keeps issues of `severity` (their location and message), or only counts
  // them. A producer that would build an issue of a severity the sink does not keep may call
  // CountOnly instead of Report and skip building the location and message; the sink's counts (by
  // severity and code) come out the same. Default: every issue is kept.
  virtual bool Keeps(Severity /*severity*/) const { return true; }
  // An issue counted, not reported: the producer asked Keeps(severity) and got false. `field` is
  // the Location::field it would have had (sinks that drop repeats by code and field need it).
  // `code` must point at static storage, as Issue::code. The default reports an issue with only
  // that field and no message, for sinks that keep everything and do not override this.
  virtual void CountOnly(Severity severity, std::string_view code, std::string_view field);

  // Shorthands.
  void Error(std::string_view code, Location where, std::string message) {
    Report({Severity::kError, code, std::move(where), std::move(message)});
  }
  void Warning(std::string_view code, Location where, std::string message) {
    Report({Severity::kWarning, code, std::move(where), std::move(message)});
  }
  void Info(std::string_view code, Location where, std::string message) {
    Report({Severity::kInformation, code, std::move(where), std::move(message)});
  }
  void Fatal(std::string_view code, Location where, std::string message) {
    Report({Severity::kFatal, code, std::move(where), std::move(message)});
  }
};

// Discards everything (benchmarks).
class NullSink final : public IssueSink {
 public:
  void Report(Issue) override {}
  bool Keeps(Severity) const override { return false; }
  void CountOnly(Severity, std::string_view, std::string_view) override {}
};

// Counts issues per severity; shared by the sinks below.
class IssueCounts {
 public:
  void Add(const Issue& issue);
  std::size_t Count(Severity severity) const { return by_severity_[static_cast<int>(severity)]; }
  // Number of fatal + error issues.
  std::size_t Errors() const { return Count(Severity::kFatal) + Count(Severity::kError); }
  std::size_t Total() const;
  const std::map<std::string, std::size_t>& ByCode() const { return by_code_; }

 private:
  std::array<std::size_t, 4> by_severity_{};
  std::map<std::string, std::size_t> by_code_;
};

class FailFastSink final : public IssueSink {
 public:
  explicit FailFastSink(Severity threshold = Severity::kError) : threshold_(threshold) {}
  void Report(Issue issue) override;
  bool StopRequested() const override { return first_.has_value(); }
  const std::optional<Issue>& First() const { return first_; }
  const IssueCounts& Counts() const { return counts_; }

 private:
  Severity threshold_;
  std::optional<Issue> first_;
  IssueCounts counts_;
};

class CollectingSink final : public IssueSink {
 public:
  // max_kept bounds memory on huge runs; issues past it are counted but not kept.
  explicit CollectingSink(std::size_t max_kept = 100000) : max_kept_(max_kept) {}
  void Report(Issue issue) override;
  const std::vector<Issue>& Issues() const { return issues_; }
  const IssueCounts& Counts() const { return counts_; }
  std::size_t Dropped() const { return dropped_; }
  bool HasErrors() const { return counts_.Errors() > 0; }
  void Clear();

 private:
  std::size_t max_kept_;
  std::vector<Issue> issues_;
  IssueCounts counts_;
  std::size_t dropped_ = 0;
};

// Forwards issues to another sink and keeps rejected input for replay.
//
// Reject() writes the raw bytes to <dir>/<sha-like id>.rejected and a sidecar
// <id>.issues.tsv (severity, code, location; never field values). Writing the same bytes twice
// yields the same id, so replays do not pile up copies.
class RejectStore final : public IssueSink {
 public:
  RejectStore(std::filesystem::path dir, IssueSink& next) : dir_(std::move(dir)), next_(next) {}
  void Report(Issue issue) override;
  bool StopRequested() const override { return next_.StopRequested(); }

  // Keeps `raw` with the issues reported since the last Reject() call. Returns the file written.
  // errc: common::errc::kIoError when the directory cannot be written.
  Result<std::filesystem::path> Reject(std::string_view raw, const Location& where);
  std::size_t RejectedCount() const { return rejected_; }

 private:
  std::filesystem::path dir_;
  IssueSink& next_;
  std::vector<Issue> pending_;
  std::size_t rejected_ = 0;
};

}  // namespace kakehashi
