// Source paths into an HL7 v2 message (STYLE.md "Records are addressed by source paths").
//
// Grammar (1-based everywhere; whitespace not allowed):
//
//   path        = segment [ "[" index "]" ] "-" field [ "[" index "]" ]
//                 [ "." component [ "." subcomponent ] ]
//   segment     = 3 characters, each A-Z or 0-9        e.g. PID, OBX, ZPR, IN1
//   index       = positive decimal integer | "*"
//   field, component, subcomponent = positive decimal integer
//
//   PID-5          first PID, field 5, first repetition, whole field
//   PID-5[2].1     first PID, field 5, second repetition, component 1
//   OBX[3]-5       third OBX segment, field 5
//   RXE-19.2.1     RXE-19 component 2, subcomponent 1 ("TAB" in "3^TAB&錠&MR9P")
//   PID-3[*]       every repetition of PID-3 (GetAll)
//   OBX[*]-3.1     OBX-3.1 of every OBX (GetAll)
//
// Segment occurrence defaults to 1, repetition defaults to 1; component/subcomponent 0 mean
// "the whole field / the whole component". MSH-1 is the field separator and MSH-2 the encoding
// characters (HL7 v2.5 §2.14.9), so MSH-3 is the first field after them.
// Thread-safety: values; reentrant.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kakehashi::adapters::hl7v2 {

struct Path {
  static constexpr int kAll = -1;  // "*"

  std::array<char, 3> segment{};  // e.g. {'P','I','D'}
  int occurrence = 1;             // 1-based, or kAll
  int field = 0;                  // 1-based
  int repetition = 1;             // 1-based, or kAll
  int component = 0;              // 0 = whole field
  int subcomponent = 0;           // 0 = whole component

  std::string_view SegmentName() const { return {segment.data(), segment.size()}; }
  bool HasWildcard() const { return occurrence == kAll || repetition == kAll; }
  // Canonical text: "PID-5[2].1"; occurrence/repetition 1 are omitted, "*" kept.
  std::string ToString() const;
  friend bool operator==(const Path&, const Path&) = default;
};

// Parses `text` per the grammar above; nullopt when it does not match (callers that take paths
// from rule files report that as a rule error, not a data issue).
std::optional<Path> ParsePath(std::string_view text) noexcept;

}  // namespace kakehashi::adapters::hl7v2
