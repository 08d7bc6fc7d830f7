// `_text` / `_content`: the text of a resource and the query language (text_search.hpp).
#include "text_search.hpp"

#include "detail/values.hpp"
#include "kakehashi/common/charset.hpp"

#include <array>
#include <cstdint>

namespace kakehashi::gateway::detail {

namespace {

constexpr std::size_t kMaxTerms = 16;
constexpr std::size_t kMaxTermBytes = 256;

// Decodes the entity starting at text[i] == '&' into `out`; returns the index after it, or i
// when it is not one we know (the '&' is then kept as a character).
std::size_t DecodeEntity(std::string_view text, std::size_t i, std::string& out) {
  const std::size_t semi = text.find(';', i);
  if (semi == std::string_view::npos || semi - i > 12) return i;
  const std::string_view name = text.substr(i + 1, semi - i - 1);
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kNamed{{
      {"amp", "&"},
      {"lt", "<"},
      {"gt", ">"},
      {"quot", "\""},
      {"apos", "'"},
      {"nbsp", " "},
  }};
  for (const auto& [n, v] : kNamed) {
    if (name == n) {
      out += v;
      return semi + 1;
    }
  }
  if (name.size() >= 2 && name[0] == '#') {
    std::uint32_t cp = 0;
    const bool hex = name[1] == 'x' || name[1] == 'X';
    const std::string_view digits = name.substr(hex ? 2 : 1);
    if (digits.empty() || digits.size() > 7) return i;
    for (char c : digits) {
      int d = -1;
      if (c >= '0' && c <= '9') d = c - '0';
      if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
      if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
      if (d < 0) return i;
      cp = cp * (hex ? 16 : 10) + static_cast<std::uint32_t>(d);
    }
    // Not a character (U+0000, a surrogate, beyond U+10FFFF): the entity is dropped.
    if (cp != 0 && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF)) common::AppendUtf8(out, cp);
    return semi + 1;
  }
  return i;
}

// Tags after which the rendered text has a break: a word ends there.
bool BreaksWords(std::string_view tag) {
  static constexpr std::string_view kBlock[] = {
      "p",  "div", "br", "td", "th",         "tr",      "li",      "ul",    "ol",    "table",
      "h1", "h2",  "h3", "h4", "h5",         "h6",      "thead",   "tbody", "tfoot", "pre",
      "hr", "dl",  "dt", "dd", "blockquote", "caption", "section", "img",   "title", "body"};
  for (std::string_view b : kBlock) {
    if (tag == b) return true;
  }
  return false;
}

// The text of an XHTML fragment: markup dropped, entities decoded (not normalised).
std::string StripXhtml(std::string_view div) {
  std::string out;
  out.reserve(div.size());
  std::size_t i = 0;
  while (i < div.size()) {
    const char c = div[i];
    if (c == '<') {
      if (div.substr(i, 4) == "<!--") {
        const std::size_t end = div.find("-->", i + 4);
        i = end == std::string_view::npos ? div.size() : end + 3;
        continue;
      }
      const std::size_t end = div.find('>', i + 1);
      std::size_t n = i + 1;
      if (n < div.size() && div[n] == '/') ++n;
      std::string tag;
      while (n < div.size() && tag.size() < 16 &&
             ((div[n] >= 'a' && div[n] <= 'z') || (div[n] >= 'A' && div[n] <= 'Z') ||
              (div[n] >= '0' && div[n] <= '9'))) {
        char t = div[n++];
        if (t >= 'A' && t <= 'Z') t = static_cast<char>(t - 'A' + 'a');
        tag += t;
      }
      if (BreaksWords(tag)) out += ' ';
      i = end == std::string_view::npos ? div.size() : end + 1;
      continue;
    }
    if (c == '&') {
      const std::size_t next = DecodeEntity(div, i, out);
      if (next != i) {
        i = next;
        continue;
      }
    }
    out += c;
    ++i;
  }
  return out;
}

void AppendText(std::string_view text, std::string& out) {
  if (text.empty()) return;
  if (!out.empty()) out += ' ';
  out += text;
}

// The members whose values are not content (text_search.hpp ResourceText::content): by length
// first, as every member of every object is tested (most keys are none of these lengths).
bool NotContent(std::string_view key) {
  switch (key.size()) {
    case 2: return key == "id";
    case 3: return key == "url";
    case 4: return key == "meta" || key == "data";
    case 6: return key == "system";
    case 9: return key == "reference";
    case 12: return key == "resourceType";
    default: return false;
  }
}

// Every string value under `node` (text_search.hpp ResourceText::content), unnormalised.
void CollectContent(const Json& node, std::string& out, int depth) {
  if (depth > 64) return;  // deeper than any FHIR resource the reader accepts
  if (node.IsArray()) {
    for (const Json& item : node.Items()) {
      if (item.IsString()) {
        AppendText(item.Text(), out);
      } else {
        CollectContent(item, out, depth + 1);
      }
    }
    return;
  }
  if (!node.IsObject()) return;
  for (const auto& [key, value] : node.Members()) {
    if (NotContent(key)) continue;
    if (value.IsString()) {
      if (key == "div") {
        AppendText(StripXhtml(value.Text()), out);
      } else {
        AppendText(value.Text(), out);
      }
    } else if (value.IsObject() || value.IsArray()) {
      CollectContent(value, out, depth + 1);
    }
  }
}

}  // namespace

ResourceText ExtractText(const Json& resource) {
  ResourceText out;
  if (!resource.IsObject()) return out;
  if (const Json* text = resource.Find("text"); text != nullptr && text->IsObject()) {
    if (const Json* div = text->Find("div"); div != nullptr && div->IsString()) {
      out.narrative = NormalizeForSearch(StripXhtml(div->Text()));
    }
  }
  std::string raw;
  CollectContent(resource, raw, 0);
  out.content = NormalizeForSearch(raw);
  return out;
}

std::size_t CodePoints(std::string_view text) {
  std::size_t n = 0;
  for (char c : text) {
    if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) ++n;
  }
  return n;
}

std::optional<TextQuery> ParseTextQuery(std::string_view value, std::string& error) {
  TextQuery query;
  std::vector<std::string> current;
  bool after_or = false;  // the last word was OR
  std::size_t terms = 0;
  auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  auto add_term = [&](std::string_view raw) -> bool {
    if (raw.size() > kMaxTermBytes) {
      error = "a term is longer than 256 bytes";
      return false;
    }
    std::string term = NormalizeForSearch(raw);
    if (term.empty()) {
      error = "a term is empty";
      return false;
    }
    if (++terms > kMaxTerms) {
      error = "more than 16 terms";
      return false;
    }
    current.push_back(std::move(term));
    after_or = false;
    return true;
  };
  std::size_t i = 0;
  while (i < value.size()) {
    if (is_space(value[i])) {
      ++i;
      continue;
    }
    if (value[i] == '"') {
      const std::size_t end = value.find('"', i + 1);
      if (end == std::string_view::npos) {
        error = "unterminated quote";
        return std::nullopt;
      }
      if (end + 1 < value.size() && !is_space(value[end + 1])) {
        error = "a quoted phrase must be followed by a space";
        return std::nullopt;
      }
      if (!add_term(value.substr(i + 1, end - i - 1))) {
        if (error == "a term is empty") error = "empty quoted phrase";
        return std::nullopt;
      }
      i = end + 1;
      continue;
    }
    std::size_t end = i;
    while (end < value.size() && !is_space(value[end])) ++end;
    const std::string_view word = value.substr(i, end - i);
    i = end;
    if (word == "OR") {
      if (current.empty()) {
        error = after_or ? "OR twice in a row" : "OR at the start of the query";
        return std::nullopt;
      }
      query.alternatives.push_back(std::move(current));
      current.clear();
      after_or = true;
      continue;
    }
    if (word == "AND" || word == "NOT") {
      error =
          "AND and NOT are not operators here (terms separated by spaces must all occur; "
          "quote the word to search for it)";
      return std::nullopt;
    }
    if (word.starts_with('-')) {
      error = "a term cannot start with '-' (no exclusion; quote it to search for it)";
      return std::nullopt;
    }
    if (word.find_first_of("()*\"") != std::string_view::npos) {
      error = "'(', ')', '*' and '\"' are not allowed in an unquoted term (quote it)";
      return std::nullopt;
    }
    if (!add_term(word)) return std::nullopt;
  }
  if (current.empty()) {
    error = after_or ? "OR at the end of the query" : "empty query";
    return std::nullopt;
  }
  query.alternatives.push_back(std::move(current));
  return query;
}

}  // namespace kakehashi::gateway::detail
