// Minimal, strict command-line parsing shared by the subcommands.
//
// Accepts "--name value", "--name=value", boolean "--flag", "--" to end options, and positionals.
// Unknown options are usage errors (exit 2), never ignored.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::app {

// Process exit codes (documented in README and --help).
inline constexpr int kExitOk = 0;           // done; warnings may be on stderr
inline constexpr int kExitInputErrors = 1;  // input had errors (or the answer is "not found")
inline constexpr int kExitUsage = 2;        // usage or environment error

class Args {
 public:
  // value_options take a value; flag_options do not. Repeated value options accumulate.
  Args(std::set<std::string, std::less<>> value_options,
       std::set<std::string, std::less<>> flag_options)
      : value_options_(std::move(value_options)), flag_options_(std::move(flag_options)) {}

  // Returns false and sets Error() on a usage error.
  bool Parse(const std::vector<std::string>& argv);
  const std::string& Error() const { return error_; }

  bool Has(std::string_view name) const;
  std::optional<std::string> Get(std::string_view name) const;  // last occurrence
  std::vector<std::string> GetAll(std::string_view name) const;
  std::string GetOr(std::string_view name, std::string fallback) const;
  const std::vector<std::string>& Positionals() const { return positionals_; }
  bool Help() const { return Has("help"); }

 private:
  std::set<std::string, std::less<>> value_options_;
  std::set<std::string, std::less<>> flag_options_;
  std::map<std::string, std::vector<std::string>, std::less<>> values_;
  std::vector<std::string> positionals_;
  std::string error_;
};

// The --facility option of convert, import and serve: empty (not given) or a 10-digit
// 医療機関コード (its check digit is the terminology's concern: a warning, not a usage error).
// Prints "kakehashi COMMAND: --facility must be ..." on stderr and returns false otherwise.
bool CheckFacilityOption(const std::string& facility, std::string_view command);

// The terminology database of convert, import and serve: --terminology URL when given, else
// $KAKEHASHI_TERMINOLOGY_DB (the database `kakehashi terminology` uses) when set and not empty;
// "" when neither (the built-in tables only).
std::string TerminologyDbOption(const Args& args);

}  // namespace kakehashi::app
