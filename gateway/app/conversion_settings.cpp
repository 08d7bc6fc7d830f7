#include "conversion_settings.hpp"

#include "convert_terminology.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <thread>

namespace kakehashi::app {

const std::set<std::string, std::less<>>& ConversionSettings::ValueOptions() {
  static const std::set<std::string, std::less<>> names = {"profile", "facility", "rules",
                                                           kTerminologyOption, kConceptMapOption};
  return names;
}

const std::set<std::string, std::less<>>& ConversionSettings::FlagOptions() {
  static const std::set<std::string, std::less<>> names = {"no-unused"};
  return names;
}

std::set<std::string, std::less<>> WithConversionValueOptions(
    std::set<std::string, std::less<>> own) {
  own.insert(ConversionSettings::ValueOptions().begin(), ConversionSettings::ValueOptions().end());
  return own;
}

std::set<std::string, std::less<>> WithConversionFlagOptions(
    std::set<std::string, std::less<>> own) {
  own.insert(ConversionSettings::FlagOptions().begin(), ConversionSettings::FlagOptions().end());
  return own;
}

std::optional<ConversionSettings> ConversionSettings::Read(const Args& args,
                                                           std::string_view command) {
  const int n = static_cast<int>(command.size());
  ConversionSettings s;
  s.profile = args.GetOr("profile", s.profile);
  if (s.profile != "jp-core-1.1.2" && s.profile != "jp-core-1.2.0") {
    std::fprintf(stderr, "kakehashi %.*s: --profile must be jp-core-1.1.2 or jp-core-1.2.0\n", n,
                 command.data());
    return std::nullopt;
  }
  s.facility = args.GetOr("facility", "");
  if (!CheckFacilityOption(s.facility, command)) return std::nullopt;
  s.rules_dir = args.GetOr("rules", "");
  s.terminology = TerminologyDbOption(args);
  s.concept_maps = args.GetAll(kConceptMapOption);
  s.report_unused = !args.Has("no-unused");
  return s;
}

std::string ConversionSettings::Fingerprint() const {
  // The layout of the first import releases, so existing checkpoints stay valid.
  std::string text = profile + "|" + facility + "|" + rules_dir + "|" + terminology;
  for (const auto& map : concept_maps) text += "|" + map;
  return text;
}

mapping::MapOptions ConversionSettings::MapOptions(
    const terminology::TerminologyStore* store) const {
  mapping::MapOptions options;
  options.profile = profile == "jp-core-1.2.0" ? mapping::ProfileSet::kJpCore120
                                               : mapping::ProfileSet::kJpCore112;
  options.facility_code = facility;
  options.report_unused = report_unused;
  options.terminology = store;
  return options;
}

std::optional<mapping::RuleSet> ConversionSettings::LoadRules(std::string_view command) const {
  std::string detail;
  auto rules = mapping::RuleSet::Load(mapping::RuleSet::BuiltinDir(), rules_dir, &detail);
  if (!rules) {
    std::fprintf(stderr, "kakehashi %.*s: %s: %s\n", static_cast<int>(command.size()),
                 command.data(), rules.error().message().c_str(), detail.c_str());
    return std::nullopt;
  }
  return std::move(*rules);
}

int ConversionSettings::OpenTerminology(IssueSink& issues,
                                        std::unique_ptr<terminology::TerminologyStore>& store,
                                        std::string_view command) const {
  return OpenConvertTerminology(*this, issues, store, command);
}

std::optional<std::size_t> ReadJobsOption(const Args& args, std::string_view command) {
  std::size_t jobs = std::max(1U, std::thread::hardware_concurrency());
  if (auto text = args.Get("jobs")) {
    char* end = nullptr;
    const long n = std::strtol(text->c_str(), &end, 10);
    if (text->empty() || *end != '\0' || n < 1 || n > 256) {
      std::fprintf(stderr, "kakehashi %.*s: --jobs must be a number from 1 to 256\n",
                   static_cast<int>(command.size()), command.data());
      return std::nullopt;
    }
    jobs = static_cast<std::size_t>(n);
  }
  return jobs;
}

}  // namespace kakehashi::app
