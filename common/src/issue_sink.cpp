#include "kakehashi/common/issue_sink.hpp"

#include "kakehashi/common/errc.hpp"

#include <cstdint>
#include <fstream>
#include <system_error>

namespace kakehashi {

void IssueSink::CountOnly(Severity severity, std::string_view code, std::string_view field) {
  Issue issue{severity, code, {}, {}};
  issue.where.field = std::string(field);
  Report(std::move(issue));
}

void IssueCounts::Add(const Issue& issue) {
  ++by_severity_[static_cast<int>(issue.severity)];
  ++by_code_[std::string(issue.code)];
}

std::size_t IssueCounts::Total() const {
  std::size_t total = 0;
  for (std::size_t n : by_severity_) total += n;
  return total;
}

void FailFastSink::Report(Issue issue) {
  counts_.Add(issue);
  // Severity enumerators are ordered from most to least severe.
  if (!first_ && static_cast<int>(issue.severity) <= static_cast<int>(threshold_)) {
    first_ = std::move(issue);
  }
}

void CollectingSink::Report(Issue issue) {
  counts_.Add(issue);
  if (issues_.size() < max_kept_) {
    issues_.push_back(std::move(issue));
  } else {
    ++dropped_;
  }
}

void CollectingSink::Clear() {
  issues_.clear();
  counts_ = IssueCounts{};
  dropped_ = 0;
}

void RejectStore::Report(Issue issue) {
  pending_.push_back(issue);
  next_.Report(std::move(issue));
}

namespace {

// FNV-1a 64: a content id for file names, not a security property.
std::uint64_t Fnv1a(std::string_view bytes) {
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

std::string Hex(std::uint64_t v) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kDigits[v & 0xF];
    v >>= 4;
  }
  return out;
}

// Sidecar fields are tab-separated; keep them on one line.
std::string OneLine(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c == '\t' || c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

}  // namespace

Result<std::filesystem::path> RejectStore::Reject(std::string_view raw, const Location& where) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return common::make_error_code(common::errc::kIoError);
  const std::string id = Hex(Fnv1a(raw));
  const std::filesystem::path data = dir_ / (id + ".rejected");
  {
    std::ofstream out(data, std::ios::binary | std::ios::trunc);
    out.write(raw.data(), static_cast<std::streamsize>(raw.size()));
    if (!out) return common::make_error_code(common::errc::kIoError);
  }
  {
    std::ofstream side(dir_ / (id + ".issues.tsv"), std::ios::trunc);
    side << "severity\tcode\tlocation\tmessage\n";
    side << "information\treject.kept\t" << OneLine(where.ToString())
         << "\tinput kept for replay\n";
    for (const Issue& issue : pending_) {
      side << ToString(issue.severity) << '\t' << issue.code << '\t'
           << OneLine(issue.where.ToString()) << '\t' << OneLine(issue.message) << '\n';
    }
    if (!side) return common::make_error_code(common::errc::kIoError);
  }
  pending_.clear();
  ++rejected_;
  return data;
}

}  // namespace kakehashi
