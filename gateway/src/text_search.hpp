// `_text` and `_content` (R4 search.html, "Parameters for all resources"; decision 0041): what
// text of a resource they search, and the small query language their values are written in.
#pragma once

#include "detail/json.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::gateway::detail {

// The searchable text of one resource, NFKC case folded with whitespace runs collapsed to one
// space (NormalizeForSearch), as idx_text stores it:
//   narrative  Resource.text.div without its XHTML markup: tags dropped (a block-level tag, <br>
//              and a table cell end a word: a space), the five XML entities and numeric
//              character references decoded.
//   content    every string value of the resource, in document order, separated by one space:
//              primitives of every kind that JSON writes as a string (string, markdown, code,
//              Coding.display, CodeableConcept.text, Identifier.value, HumanName parts, dates,
//              ...), contained resources and extension values included, then the narrative.
//              Not: `resourceType`, element and resource `id`s, `meta` (version, tags, profiles:
//              searched by _tag/_profile/_security/_source), Reference.reference and `url`
//              (identifiers of other things, not the resource's text), Coding/Identifier
//              `system` (URIs), base64Binary `data` (Attachment.data, Binary: encoded bytes), and
//              numbers and booleans (not text).
// Both empty when the resource has none.
struct ResourceText {
  std::string narrative;
  std::string content;
};
ResourceText ExtractText(const Json& resource);

// One value of `_text` or `_content` (already split at unescaped commas and unescaped):
//   terms separated by whitespace must all occur (AND); the word OR between terms separates
//   alternatives (AND binds tighter: `a b OR c` is (a AND b) OR c); a "quoted phrase" is one
//   term with its spaces. Every term is NFKC case folded like the stored text and matched as a
//   substring (Japanese has no word boundaries).
// Refused (the message names the reason, never the value): an empty query, an unterminated or
// empty quote, OR at either end or twice in a row, the words AND and NOT, a term starting with
// '-', and '(' ')' '*' '"' inside an unquoted term (their meaning in other query languages is not
// ours; quote them to search for them), more than 16 terms, a term longer than 256 bytes.
struct TextQuery {
  std::vector<std::vector<std::string>> alternatives;  // OR of ANDed terms, each normalised
};
// nullopt and `error` set when the value is refused.
std::optional<TextQuery> ParseTextQuery(std::string_view value, std::string& error);

// Code points of UTF-8 `text` (terms shorter than 3 cannot be narrowed by a trigram index).
std::size_t CodePoints(std::string_view text);

}  // namespace kakehashi::gateway::detail
