// Named C++ functions that rules call with {"fn": "<name>", ...} (STYLE.md "Rules declare, C++
// computes"). The table is fixed at build time; rules cannot define functions. Each function is
// pure given its arguments and context, and reports problems as Issues (never field values).
#pragma once

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/fhir/node.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kakehashi::mapping {

class RuleSet;
struct MapOptions;
struct SourceInfo;
class MessageView;

// Values some functions derive from the whole message, worked out once per message (the mapper
// keeps one per Map call; functions called without one compute them each time).
struct MessageMemo {
  bool facility_known = false;
  std::string facility;  // FacilityCode: --facility, else a 10-digit MSH-4, else ""
  // Fields whose mapping.facility_unknown was reported (the mapper's sink drops repeats of a code
  // at a field within a message, so they need not be built again).
  std::vector<std::string> facility_unknown_fields;
  // The URI code_system gives a coding-system name without an issue depends only on the name,
  // the rules and the options, so it is remembered per thread across messages for the Mapper
  // whose compiled rules have this id (distinct per Mapper construction; 0: not remembered).
  std::uint64_t rules_id = 0;
};

// What a function may use besides its arguments.
struct FunctionContext {
  FunctionContext(const RuleSet& rules_in, const MapOptions& options_in,
                  const SourceInfo& source_in, const MessageView& message_in, IssueSink& issues_in,
                  const Location& base_in, std::string_view field_in, std::string_view fhir_path_in,
                  int scope_index_in = 1, int group_index_in = 1)
      : rules(rules_in),
        options(options_in),
        source(source_in),
        message(message_in),
        issues(issues_in),
        base(base_in),
        field(field_in),
        fhir_path(fhir_path_in),
        scope_index(scope_index_in),
        group_index(group_index_in) {}

  const RuleSet& rules;
  const MapOptions& options;
  const SourceInfo& source;
  const MessageView& message;
  IssueSink& issues;
  const Location& base;         // the message's location (source, record)
  std::string_view field;       // the source path being mapped ("PID-7"; may be empty)
  std::string_view fhir_path;   // the element being built ("Patient.birthDate")
  int scope_index = 1;          // 1-based index of the current scope instance
  int group_index = 1;          // 1-based index within its group (e.g. RXE within ORC)
  MessageMemo* memo = nullptr;  // per-message values (may be null)

  // The field being mapped, for issues: `base` with `field` and `fhir_path`. Built on first use
  // (most calls report nothing), then kept; the views above must outlive the context.
  const Location& Where() {
    if (!where_) {
      where_.emplace(base);
      where_->field = std::string(field);
      where_->fhir_path = std::string(fhir_path);
    }
    return *where_;
  }

 private:
  std::optional<Location> where_;
};

using Argument = std::optional<fhir::Node>;
using Function =
    std::function<std::optional<fhir::Node>(std::span<const Argument>, FunctionContext&)>;

// nullptr for an unknown name.
const Function* FindFunction(std::string_view name);
std::vector<std::string_view> FunctionNames();

// ---- The text helpers behind some functions, exposed for tests. ----

// HL7 TS/DT -> FHIR date, keeping the precision: "198004" -> "1980-04", "19800102123000" ->
// "1980-01-02". nullopt when not a valid date prefix.
std::optional<std::string> Hl7DateToFhir(std::string_view ts);
// HL7 TS -> FHIR dateTime: date-only values keep their precision; with a time, seconds are padded
// and "+09:00" is appended (JST; SS-MIX2 carries no offsets). Hours 24-47 roll into the next day
// (*rolled = true). nullopt when invalid.
std::optional<std::string> Hl7DateTimeToFhir(std::string_view ts, bool* rolled = nullptr);
// Japanese era date -> FHIR date: "S55.4.1", "昭和55年4月1日", "H1", "R6/1/2", "令和元年5月1日";
// era letters M T S H R (明治 大正 昭和 平成 令和). nullopt when not an era date.
std::optional<std::string> JpEraToDate(std::string_view text);
// Half-width katakana (U+FF61-FF9F) -> full-width, joining (han)dakuten; other text unchanged.
std::string NormalizeKana(std::string_view text);
// Decimal text for FHIR: trims, full-width digits/sign/point -> ASCII; keeps the given digits
// ("1.50"). nullopt when not a decimal.
std::optional<std::string> NormalizeDecimal(std::string_view text);

}  // namespace kakehashi::mapping
