// Adapter plug-in interfaces (STYLE.md "Adapters"): one directory and one explicit entry point per
// source format, cheap sniffing, records addressed by source paths.
//
//   Registry registry;                       // an object, not a singleton: tests build their own
//   RegisterBuiltinAdapters(registry);       // explicit: the adapters in KAKEHASHI_ADAPTERS
//   auto probe = MakeProbe(path);            // path + first bytes (the only I/O of detection)
//   auto detected = registry.Detect(*probe); // best Score() wins; a tie is reported, not guessed
//   auto source = detected.adapter->Open({path, "name"}, {}, issues);
//   while (auto record = (*source)->Next(issues)) { ... record->GetText("PID-5.1") ... }
//
// Registration is explicit (no static self-registration: linkers drop unreferenced objects from
// static archives). Thread-safety: a Registry is immutable after set-up and may then be shared;
// a RecordSource belongs to one thread.
#pragma once

#include "kakehashi/common/charset.hpp"
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/common/result.hpp"

#include <cstddef>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::adapters {

// What detection may look at: the path and the first bytes of a file. Score() is pure.
struct Probe {
  static constexpr std::size_t kProbeBytes = 4096;

  std::filesystem::path path;  // as given
  bool is_directory = false;
  std::string head;  // first kProbeBytes bytes of a regular file; empty for a directory
};

// Reads the probe of `path`. errc (common): kNotFound, kIoError.
Result<Probe> MakeProbe(const std::filesystem::path& path);

struct SourceSpec {
  std::filesystem::path path;  // file or directory
  std::string name;            // Location.source of issues; the path when empty
};

struct Options {
  // Decode with this charset, ignoring declarations and detection (an operator who knows).
  std::optional<common::Charset> charset;
};

// One record of a source (an HL7 message, a CSV row, a JAHIS prescription): read by path.
class Record {
 public:
  virtual ~Record() = default;
  virtual std::string_view Kind() const = 0;  // "hl7v2", ...
  // The unescaped text at `path` (adapter-specific grammar; hl7v2: path.hpp), marking it used;
  // nullopt when the element does not exist.
  virtual std::optional<std::string> GetText(std::string_view path) const = 0;
  // Non-empty elements no GetText read (for `information` issues).
  virtual std::vector<std::string> UnusedFields() const = 0;
  // Where the record came from (source, record id, byte offset), for issues.
  virtual Location Where() const = 0;
};

// A stream of records. Next() returns nullptr at the end; problems with the data are issues, and
// a bad record never stops the stream. errc only for operational failures (kIoError).
class RecordSource {
 public:
  virtual ~RecordSource() = default;
  virtual Result<std::unique_ptr<Record>> Next(IssueSink& issues) = 0;
};

class Adapter {
 public:
  virtual ~Adapter() = default;
  virtual std::string_view Name() const = 0;        // "hl7v2", "vendor_csv.acme"
  virtual int Score(const Probe& probe) const = 0;  // 0 (not mine) .. 100 (certainly mine); pure
  virtual Result<std::unique_ptr<RecordSource>> Open(const SourceSpec& source,
                                                     const Options& options,
                                                     IssueSink& issues) const = 0;
};

class Registry {
 public:
  // Adds `adapter`; a second adapter with the same Name() is refused (returns false).
  bool Add(std::unique_ptr<Adapter> adapter);
  const Adapter* Find(std::string_view name) const;
  std::vector<std::string_view> Names() const;  // in registration order

  struct Detection {
    const Adapter* adapter = nullptr;  // nullptr when no adapter scored > 0, or on a tie
    int score = 0;
    std::vector<std::string_view> tied;  // names sharing the best score when it is a tie
  };
  Detection Detect(const Probe& probe) const;

 private:
  std::vector<std::unique_ptr<Adapter>> adapters_;
};

// Registers every adapter compiled in (CMake option KAKEHASHI_ADAPTERS, default "hl7v2;ssmix2").
void RegisterBuiltinAdapters(Registry& registry);

}  // namespace kakehashi::adapters
