// Value helpers for indexing and search: string normalisation and FHIR date/time ranges.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kakehashi::gateway::detail {

// NFKC case fold (Unicode UAX #15 + default case folding) with whitespace runs collapsed: makes
// full-width/half-width Latin, digits and katakana, and letter case match (ＹＡＭＡＤＡ = yamada,
// ﾔﾏﾀﾞ = ヤマダ). Invalid UTF-8 yields the input lower-cased bytewise.
std::string NormalizeForSearch(std::string_view text);

struct TimeRange {
  std::int64_t low_us = 0;   // inclusive
  std::int64_t high_us = 0;  // inclusive
};

// A FHIR date, dateTime or instant ("2024", "2024-03", "2024-03-05", "2024-03-05T10:20",
// "2024-03-05T10:20:30.5+09:00") as the range its precision covers (R4 §3.1.1.5.6: "2024" means
// the whole year). Without a time zone the value is taken as UTC. nullopt when malformed.
std::optional<TimeRange> ParseFhirDateRange(std::string_view text);

// An instant as FHIR text with microsecond precision: "2026-11-30T19:00:00.123456Z".
std::string FormatInstant(std::int64_t us);
// RFC 7231 IMF-fixdate for Last-Modified: "Mon, 30 Nov 2026 19:00:00 GMT".
std::string FormatHttpDate(std::int64_t us);
// The weak ETag of a version (FHIR RESTful API "Managing Resource Contention"): W/"3".
std::string FormatETag(std::int64_t version);

}  // namespace kakehashi::gateway::detail
