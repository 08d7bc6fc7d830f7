// FHIR JSON (http://hl7.org/fhir/R4/json.html) to and from Node.
//
// Reading has two layers:
//   ParseJson     well-formed UTF-8 JSON -> Node. Numbers keep their text ("1.50"), member order
//                 is kept, nesting and size are bounded (no stack overflow on hostile input: the
//                 parser is iterative and stops at JsonLimits::max_depth).
//   CheckResource a Node against the R4 metadata: resourceType present and known, every member a
//                 known element (choice names typed, "_x" only for primitives), JSON kinds as the
//                 element's type requires (string/number/boolean/object), arrays exactly where
//                 max > 1; contained resources and Bundle.entry.resource are checked recursively.
//                 Value formats (dates, regexes), cardinality and bindings are conformance/'s job.
//   ReadResource  both.
//
// Writing: WriteJson produces canonical output by default: resourceType first, then the elements
// in R4 specification order (fhir/r4/meta.hpp), "_x" right after "x", unknown members last in
// their input order, no empty strings/objects/arrays and no nulls except those that keep
// primitive arrays aligned with their "_x" partner; compact (no whitespace) unless pretty.
// Writing canonical output twice yields identical bytes, so outputs can be compared byte-wise.
//
// Issue codes (all severity error unless noted; locations carry `byte` for syntax problems and
// `fhir_path` such as "Patient.name[0].given[1]" for model problems):
//   fhir.json.syntax               malformed JSON (fatal)
//   fhir.json.encoding             invalid UTF-8 (fatal)
//   fhir.json.too_deep             nesting deeper than max_depth (fatal)
//   fhir.json.too_large            text larger than max_bytes (fatal)
//   fhir.json.duplicate_key        an object repeats a member name (the last one is kept)
//   fhir.json.not_object           a resource (or complex element) is not a JSON object
//   fhir.json.missing_resource_type / fhir.json.unknown_resource_type
//   fhir.json.unknown_element      a member that the type does not define
//   fhir.json.wrong_type           string vs number vs boolean vs object mismatch
//   fhir.json.expected_array       a single value where the element repeats (max > 1)
//   fhir.json.unexpected_array     an array where the element is single (max = 1)
//   fhir.json.bad_primitive_extension  "_x" for a non-primitive, or not an object/array of them
//   fhir.json.null_value           null outside a primitive array aligned with its "_x" partner
//
// Thread-safety: all functions are reentrant.
#pragma once

#include "kakehashi/common/issue.hpp"
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/common/result.hpp"
#include "kakehashi/fhir/errc.hpp"
#include "kakehashi/fhir/node.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::fhir {

struct JsonLimits {
  std::size_t max_bytes = std::size_t{256} << 20;  // 256 MiB
  std::size_t max_depth = 200;  // objects + arrays; R4 resources rarely exceed 20
};

// Plain JSON. errc: kJsonSyntax, kJsonEncoding, kJsonTooDeep, kJsonTooLarge.
Result<Node> ParseJson(std::string_view text, const JsonLimits& limits = {});

// Plain JSON, reporting problems as issues (fhir.json.syntax/encoding/too_deep/too_large with the
// byte offset and the JSON path reached, fhir.json.duplicate_key). `base` is copied into every
// issue's location (source, record). nullopt when the text is not usable JSON.
std::optional<Node> ParseJson(std::string_view text, IssueSink& issues, const Location& base = {},
                              const JsonLimits& limits = {});

// Checks `resource` against the R4 metadata (codes above). Returns true when nothing of severity
// error or worse was reported. `base.fhir_path`, when set, prefixes the reported paths.
bool CheckResource(const Node& resource, IssueSink& issues, const Location& base = {});

// ParseJson + CheckResource. nullopt only when the text is not usable JSON; a parsed resource with
// model errors is returned (after the issues are reported) so callers can keep it for replay.
std::optional<Node> ReadResource(std::string_view text, IssueSink& issues,
                                 const Location& base = {}, const JsonLimits& limits = {});

struct WriteOptions {
  bool canonical = true;  // metadata order and no empty values; false keeps the Node as it is
  bool pretty = false;    // two-space indentation and newlines
  // Canonical only: the caller vouches that every object's members are already in metadata
  // order and every key is an element name of its type (e.g. conformance::Validator said so for
  // this resource), so the writer keeps the order as it is and skips the per-member metadata
  // lookup. Empty values are still dropped. Wrong output (order, unescaped keys) if not true.
  bool members_in_order = false;
};

// Serialises `node`. With canonical order, objects carrying "resourceType" are ordered by their
// type's metadata (recursively, including contained resources and backbone elements).
std::string WriteJson(const Node& node, const WriteOptions& options = {});
void WriteJson(const Node& node, std::string& out, const WriteOptions& options = {});

// Appends `text` as a JSON string (quotes included) with exactly the escaping WriteJson uses for
// keys and string values, so that code writing JSON alongside a walk of its own (the conformance
// validator's write-while-validating) produces the same bytes as WriteJson.
void AppendJsonString(std::string& out, std::string_view text);

// Whether any of the 8 bytes of `word` is a byte that JSON strings escape: a control byte
// (< 0x20), '"' or '\\'. Classic SWAR zero-byte tests, exact (each term is a per-byte test whose
// borrows only arise above a byte that already matched).
inline bool JsonWordNeedsEscape(std::uint64_t word) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ull;
  constexpr std::uint64_t kHigh = 0x8080808080808080ull;
  const auto has_zero = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  const std::uint64_t below_space = (word - kOnes * 0x20) & ~word & kHigh;
  return (below_space | has_zero(word ^ (kOnes * '"')) | has_zero(word ^ (kOnes * '\\'))) != 0;
}

// Whether `text` holds such a byte. When false, AppendJsonString appends '"' + text + '"'.
// Inline (8 bytes per step): writers ask for every string value.
inline bool JsonNeedsEscape(std::string_view text) {
  const char* p = text.data();
  const std::size_t n = text.size();
  if (n < 8) {
    for (std::size_t i = 0; i < n; ++i) {
      const unsigned char c = static_cast<unsigned char>(p[i]);
      if (c < 0x20 || c == '"' || c == '\\') return true;
    }
    return false;
  }
  std::uint64_t word;
  for (std::size_t i = 0; i + 8 <= n; i += 8) {
    std::memcpy(&word, p + i, 8);
    if (JsonWordNeedsEscape(word)) return true;
  }
  std::memcpy(&word, p + n - 8, 8);  // the tail, overlapping the last full word
  return JsonWordNeedsEscape(word);
}

// An OperationOutcome (http://hl7.org/fhir/R4/operationoutcome.html) for `issues`:
// issue.severity from Issue::severity, issue.code an IssueType derived from the issue code
// (structure, required, value, code-invalid, invalid, processing, …), issue.details.coding
// {system "urn:kakehashi:issue-code", code = Issue::code}, diagnostics = message,
// location = the rendered Location, expression = Location::fhir_path when known.
// An empty list yields one "information" issue saying that nothing was found (R4 requires
// at least one issue).
Node ToOperationOutcome(const std::vector<Issue>& issues);

// The IssueType code used for an issue code ("fhir.json.unknown_element" -> "structure").
std::string_view IssueTypeOf(std::string_view issue_code);

}  // namespace kakehashi::fhir
