// Lexical checks for FHIR R4 primitive values (http://hl7.org/fhir/R4/datatypes.html).
//
// The specification gives each primitive a regex that must match the *whole* value (the regexes
// are implicitly anchored, as in XML Schema patterns). The hot primitives have hand-written
// checkers equivalent to those regexes, plus the checks the prose adds (dates are real calendar
// dates, integers fit 32 bits). Other primitives fall back to the regex from the generated
// metadata, matched in full with std::regex.
//
// All functions are pure and thread-safe. `text` is the JSON string value, or for numbers the
// JSON number text (kakehashi keeps numbers as text).
#pragma once

#include <string_view>

namespace kakehashi::conformance {

// YYYY, YYYY-MM or YYYY-MM-DD; year 0001-9999; a real calendar day.
bool IsDate(std::string_view text);
// A date, or YYYY-MM-DDThh:mm:ss(.s+)?(Z|(+|-)hh:mm): a time needs seconds and a time zone.
bool IsDateTime(std::string_view text);
// YYYY-MM-DDThh:mm:ss(.s+)?(Z|(+|-)hh:mm): full precision, time zone required.
bool IsInstant(std::string_view text);
// hh:mm:ss(.s+)? with hh 00-23 (a time of day, no time zone).
bool IsTime(std::string_view text);
// [A-Za-z0-9\-\.]{1,64}: Resource.id, Element.id values of type id.
bool IsId(std::string_view text);
// [^\s]+(\s[^\s]+)*: no leading/trailing whitespace, single whitespace between tokens.
bool IsCode(std::string_view text);
// \S*: uri, url, canonical (no whitespace).
bool IsUri(std::string_view text);
// urn:oid:[0-2](\.(0|[1-9][0-9]*))+
bool IsOid(std::string_view text);
// urn:uuid: followed by a lowercase 8-4-4-4-12 hex UUID.
bool IsUuid(std::string_view text);
// (\s*([0-9a-zA-Z\+/=]){4}\s*)+
bool IsBase64Binary(std::string_view text);
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsDecimal(std::string_view text);
// -?([0]|([1-9][0-9]*)) within a signed 32-bit range.
bool IsInteger(std::string_view text);
// +?[1-9][0-9]* within 32 bits (JSON numbers have no '+').
bool IsPositiveInt(std::string_view text);
// [0]|([1-9][0-9]*) within 32 bits.
bool IsUnsignedInt(std::string_view text);
// string and markdown: [ \r\n\t\S]+. Read as the spec intends: non-empty, and no control
// characters other than tab, CR and LF. (Unicode spaces such as U+3000, common in Japanese
// names, are allowed: the regex's \S is about control characters, not about non-ASCII spaces.)
// At most 1024*1024 characters (datatypes.html#string).
bool IsFhirString(std::string_view text);

// Checks `text` as primitive `type` ("date", "positiveInt", …). Types without a hand-written
// checker use `spec_regex` (full match; an invalid or empty regex accepts the value).
bool MatchesPrimitive(std::string_view type, std::string_view text, std::string_view spec_regex);

}  // namespace kakehashi::conformance
