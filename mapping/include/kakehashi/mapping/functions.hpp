// Named C++ functions that rules call with {"fn": "<name>", ...} (STYLE.md "Rules declare, C++
// computes"). The table is fixed at build time; rules cannot define functions. Each function is
// pure given its arguments and context, and reports problems as Issues (never field values).
#pragma once

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/fhir/node.hpp"

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::mapping {

class RuleSet;
struct MapOptions;
struct SourceInfo;
class MessageView;

// What a function may use besides its arguments.
struct FunctionContext {
  const RuleSet& rules;
  const MapOptions& options;
  const SourceInfo& source;
  const MessageView& message;
  IssueSink& issues;
  Location where;       // the field being mapped (for issues)
  int scope_index = 1;  // 1-based index of the current scope instance
  int group_index = 1;  // 1-based index within its group (e.g. RXE within ORC)
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
