#include "args.hpp"

#include <cstdio>
#include <cstdlib>

namespace kakehashi::app {

bool Args::Parse(const std::vector<std::string>& argv) {
  bool options_done = false;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (options_done || arg.size() < 2 || arg.rfind("--", 0) != 0) {
      if (!options_done && arg.size() >= 2 && arg[0] == '-' && arg[1] != '-') {
        if (arg == "-h") {
          values_["help"].push_back("");
          continue;
        }
        error_ = "unknown option '" + arg + "'";
        return false;
      }
      positionals_.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_done = true;
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> inline_value;
    if (const auto eq = name.find('='); eq != std::string::npos) {
      inline_value = name.substr(eq + 1);
      name.resize(eq);
    }
    if (name == "help" || flag_options_.count(name) != 0) {
      if (inline_value) {
        error_ = "option '--" + name + "' takes no value";
        return false;
      }
      values_[name].push_back("");
    } else if (value_options_.count(name) != 0) {
      if (inline_value) {
        values_[name].push_back(*inline_value);
      } else if (i + 1 < argv.size()) {
        values_[name].push_back(argv[++i]);
      } else {
        error_ = "option '--" + name + "' needs a value";
        return false;
      }
    } else {
      error_ = "unknown option '--" + name + "'";
      return false;
    }
  }
  return true;
}

bool Args::Has(std::string_view name) const {
  return values_.find(name) != values_.end();
}

std::optional<std::string> Args::Get(std::string_view name) const {
  const auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) return std::nullopt;
  return it->second.back();
}

std::vector<std::string> Args::GetAll(std::string_view name) const {
  const auto it = values_.find(name);
  if (it == values_.end()) return {};
  return it->second;
}

std::string Args::GetOr(std::string_view name, std::string fallback) const {
  auto v = Get(name);
  return v ? *v : std::move(fallback);
}

bool CheckFacilityOption(const std::string& facility, std::string_view command) {
  if (facility.empty() ||
      (facility.size() == 10 && facility.find_first_not_of("0123456789") == std::string::npos)) {
    return true;
  }
  std::fprintf(stderr, "kakehashi %.*s: --facility must be a 10-digit 医療機関コード\n",
               static_cast<int>(command.size()), command.data());
  return false;
}

std::string TerminologyDbOption(const Args& args) {
  if (auto v = args.Get("terminology")) return *v;
  const char* env = std::getenv("KAKEHASHI_TERMINOLOGY_DB");
  return env != nullptr ? std::string(env) : std::string();
}

}  // namespace kakehashi::app
