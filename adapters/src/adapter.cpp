#include "kakehashi/adapters/adapter.hpp"

#include "kakehashi/common/errc.hpp"

#include <fstream>

namespace kakehashi::adapters {

Result<Probe> MakeProbe(const std::filesystem::path& path) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    return common::make_error_code(common::errc::kNotFound);
  }
  Probe probe;
  probe.path = path;
  probe.is_directory = std::filesystem::is_directory(status);
  if (probe.is_directory) return probe;
  std::ifstream in(path, std::ios::binary);
  if (!in) return common::make_error_code(common::errc::kIoError);
  probe.head.resize(Probe::kProbeBytes);
  in.read(probe.head.data(), static_cast<std::streamsize>(probe.head.size()));
  probe.head.resize(static_cast<std::size_t>(in.gcount()));
  if (in.bad()) return common::make_error_code(common::errc::kIoError);
  return probe;
}

bool Registry::Add(std::unique_ptr<Adapter> adapter) {
  if (adapter == nullptr || Find(adapter->Name()) != nullptr) return false;
  adapters_.push_back(std::move(adapter));
  return true;
}

const Adapter* Registry::Find(std::string_view name) const {
  for (const auto& a : adapters_) {
    if (a->Name() == name) return a.get();
  }
  return nullptr;
}

std::vector<std::string_view> Registry::Names() const {
  std::vector<std::string_view> names;
  for (const auto& a : adapters_) names.push_back(a->Name());
  return names;
}

Registry::Detection Registry::Detect(const Probe& probe) const {
  Detection best;
  for (const auto& a : adapters_) {
    const int score = a->Score(probe);
    if (score <= 0) continue;
    if (score > best.score) {
      best.score = score;
      best.adapter = a.get();
      best.tied.clear();
      best.tied.push_back(a->Name());
    } else if (score == best.score) {
      best.tied.push_back(a->Name());
    }
  }
  if (best.tied.size() > 1) {
    best.adapter = nullptr;  // a tie is reported, not guessed
  } else {
    best.tied.clear();
  }
  return best;
}

}  // namespace kakehashi::adapters
