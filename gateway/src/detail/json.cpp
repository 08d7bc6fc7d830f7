// Recursive-descent JSON reader/writer (RFC 8259). Depth-limited so hostile input cannot exhaust
// the stack of an io thread; UTF-8 is validated because FHIR JSON must be UTF-8 (R4 §2.6.2).
#include "detail/json.hpp"

#include "kakehashi/common/charset.hpp"
#include "kakehashi/fhir/json.hpp"

#include <cstdint>
#include <cstring>

namespace kakehashi::gateway::detail {

const Json* Json::Find(std::string_view key) const {
  for (const auto& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

Json* Json::Find(std::string_view key) {
  for (auto& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

Json& Json::Set(std::string key, Json value) {
  if (Json* existing = Find(key)) {
    *existing = std::move(value);
    return *existing;
  }
  members_.emplace_back(std::move(key), std::move(value));
  return members_.back().second;
}

bool Json::Remove(std::string_view key) {
  for (auto it = members_.begin(); it != members_.end(); ++it) {
    if (it->first == key) {
      members_.erase(it);
      return true;
    }
  }
  return false;
}

std::string_view Json::Str(std::string_view key) const {
  const Json* j = Find(key);
  return j != nullptr && j->IsString() ? std::string_view(j->Text()) : std::string_view();
}

Json& Json::Push(Json value) {
  items_.push_back(std::move(value));
  return items_.back();
}

namespace {

class Parser {
 public:
  Parser(std::string_view text, JsonError& error, int max_depth)
      : s_(text), error_(error), max_depth_(max_depth) {}

  bool Run(Json& out) {
    SkipWs();
    if (!Value(out, 0)) return false;
    SkipWs();
    if (pos_ != s_.size()) return Fail("unexpected characters after the JSON value");
    return true;
  }

 private:
  bool Fail(const char* message) {
    error_.offset = pos_;
    error_.message = message;
    return false;
  }
  void SkipWs() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool Literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return Fail("invalid literal");
    pos_ += word.size();
    return true;
  }

  bool Value(Json& out, int depth) {
    if (depth > max_depth_) return Fail("JSON nested too deeply");
    if (pos_ >= s_.size()) return Fail("unexpected end of JSON");
    char c = s_[pos_];
    switch (c) {
      case '{': return ObjectValue(out, depth);
      case '[': return ArrayValue(out, depth);
      case '"': {
        std::string text;
        if (!StringValue(text)) return false;
        out = Json::String(std::move(text));
        return true;
      }
      case 't': out = Json::Bool(true); return Literal("true");
      case 'f': out = Json::Bool(false); return Literal("false");
      case 'n': out = Json(); return Literal("null");
      default: return NumberValue(out);
    }
  }

  // Members and items are gathered on the parser's scratch stacks (members_ / items_: each
  // object or array parsed uses the top of its stack and pops what it pushed), then moved into
  // the value in one allocation of their exact count, instead of growing its vector by doubling
  // (an object of 5 members: 1 allocation, not 4).
  bool ObjectValue(Json& out, int depth) {
    out = Json::Object();
    ++pos_;
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return true;
    }
    const std::size_t base = members_.size();
    while (true) {
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != '"') return Fail("expected a member name");
      std::string key;
      if (!StringValue(key)) return false;
      SkipWs();
      if (pos_ >= s_.size() || s_[pos_] != ':') return Fail("expected ':'");
      ++pos_;
      SkipWs();
      Json value;
      if (!Value(value, depth + 1)) return false;
      // Duplicate member names are invalid FHIR JSON (R4 §2.6.2); reject rather than guess.
      for (std::size_t i = base; i < members_.size(); ++i) {
        if (members_[i].first == key) return Fail("duplicate member name");
      }
      members_.emplace_back(std::move(key), std::move(value));
      SkipWs();
      if (pos_ >= s_.size()) return Fail("unexpected end of JSON in object");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == '}') {
        ++pos_;
        auto& members = out.Members();
        members.reserve(members_.size() - base);
        for (std::size_t i = base; i < members_.size(); ++i) {
          members.push_back(std::move(members_[i]));
        }
        members_.resize(base);
        return true;
      }
      return Fail("expected ',' or '}'");
    }
  }

  bool ArrayValue(Json& out, int depth) {
    out = Json::Array();
    ++pos_;
    SkipWs();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return true;
    }
    const std::size_t base = items_.size();
    while (true) {
      SkipWs();
      Json value;
      if (!Value(value, depth + 1)) return false;
      items_.push_back(std::move(value));
      SkipWs();
      if (pos_ >= s_.size()) return Fail("unexpected end of JSON in array");
      if (s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (s_[pos_] == ']') {
        ++pos_;
        auto& items = out.Items();
        items.reserve(items_.size() - base);
        for (std::size_t i = base; i < items_.size(); ++i) items.push_back(std::move(items_[i]));
        items_.resize(base);
        return true;
      }
      return Fail("expected ',' or ']'");
    }
  }

  bool NumberValue(Json& out) {
    std::size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    if (pos_ >= s_.size()) return Fail("invalid number");
    if (s_[pos_] == '0') {
      ++pos_;
    } else if (s_[pos_] >= '1' && s_[pos_] <= '9') {
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    } else {
      return Fail("invalid value");
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      std::size_t digits = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      if (pos_ == digits) return Fail("invalid number");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      std::size_t digits = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      if (pos_ == digits) return Fail("invalid number");
    }
    out = Json::Number(std::string(s_.substr(start, pos_ - start)));
    return true;
  }

  bool Hex4(std::uint32_t& cp) {
    if (pos_ + 4 > s_.size()) return Fail("truncated \\u escape");
    cp = 0;
    for (int i = 0; i < 4; ++i) {
      char h = s_[pos_++];
      cp <<= 4;
      if (h >= '0' && h <= '9') {
        cp |= static_cast<std::uint32_t>(h - '0');
      } else if (h >= 'a' && h <= 'f') {
        cp |= static_cast<std::uint32_t>(h - 'a' + 10);
      } else if (h >= 'A' && h <= 'F') {
        cp |= static_cast<std::uint32_t>(h - 'A' + 10);
      } else {
        return Fail("invalid \\u escape");
      }
    }
    return true;
  }

  // Validates one UTF-8 sequence starting at pos_ and appends it.
  bool Utf8(std::string& out) {
    auto b0 = static_cast<unsigned char>(s_[pos_]);
    int len = 0;
    std::uint32_t cp = 0;
    if (b0 >= 0xC2 && b0 <= 0xDF) {
      len = 2;
      cp = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
      len = 3;
      cp = b0 & 0x0F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
      len = 4;
      cp = b0 & 0x07;
    } else {
      return Fail("invalid UTF-8");
    }
    if (pos_ + static_cast<std::size_t>(len) > s_.size()) return Fail("invalid UTF-8");
    for (int i = 1; i < len; ++i) {
      auto b = static_cast<unsigned char>(s_[pos_ + static_cast<std::size_t>(i)]);
      if ((b & 0xC0) != 0x80) return Fail("invalid UTF-8");
      cp = (cp << 6) | (b & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
      return Fail("invalid UTF-8");
    }
    out.append(s_.substr(pos_, static_cast<std::size_t>(len)));
    pos_ += static_cast<std::size_t>(len);
    return true;
  }

  bool StringValue(std::string& out) {
    ++pos_;  // opening quote
    while (true) {
      if (pos_ >= s_.size()) return Fail("unterminated string");
      char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) return Fail("control character in string");
      if (c == '\\') {
        ++pos_;
        if (pos_ >= s_.size()) return Fail("unterminated string");
        char e = s_[pos_++];
        switch (e) {
          case '"': out += '"'; break;
          case '\\': out += '\\'; break;
          case '/': out += '/'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'n': out += '\n'; break;
          case 'r': out += '\r'; break;
          case 't': out += '\t'; break;
          case 'u': {
            std::uint32_t cp = 0;
            if (!Hex4(cp)) return false;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
              if (s_.substr(pos_, 2) != "\\u") return Fail("unpaired surrogate");
              pos_ += 2;
              std::uint32_t low = 0;
              if (!Hex4(low)) return false;
              if (low < 0xDC00 || low > 0xDFFF) return Fail("unpaired surrogate");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              return Fail("unpaired surrogate");
            }
            common::AppendUtf8(out, cp);
            break;
          }
          default: return Fail("invalid escape");
        }
        continue;
      }
      if (static_cast<unsigned char>(c) >= 0x80) {
        if (!Utf8(out)) return false;
        continue;
      }
      // A run of plain ASCII characters goes in one append (one at a time was most of the
      // parse of a transaction Bundle: every string of every entry comes through here).
      const std::size_t run = pos_;
      // Eight bytes at a time while none is a quote, backslash, control byte or non-ASCII.
      constexpr std::uint64_t kHigh = 0x8080808080808080ull;
      std::uint64_t word;
      while (pos_ + 9 <= s_.size()) {
        std::memcpy(&word, s_.data() + pos_ + 1, 8);
        if (fhir::JsonWordNeedsEscape(word) || (word & kHigh) != 0) break;
        pos_ += 8;
      }
      while (++pos_ < s_.size()) {
        const auto u = static_cast<unsigned char>(s_[pos_]);
        if (u < 0x20 || u >= 0x80 || u == '"' || u == '\\') break;
      }
      out.append(s_.data() + run, pos_ - run);
    }
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  JsonError& error_;
  int max_depth_;
  std::vector<std::pair<std::string, Json>> members_;  // scratch stacks (ObjectValue)
  std::vector<Json> items_;
};

}  // namespace

bool ParseJson(std::string_view text, Json& out, JsonError& error, int max_depth) {
  Parser parser(text, error, max_depth);
  return parser.Run(out);
}

void AppendJsonString(std::string_view text, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  // Most strings need no escape: told eight bytes at a time, then appended at once.
  if (!fhir::JsonNeedsEscape(text)) {
    out += text;
    out += '"';
    return;
  }
  // Runs of characters written as they are go in one append (a character at a time showed in a
  // transaction's profile: every stored resource and response entry is written here).
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto u = static_cast<unsigned char>(text[i]);
    if (u >= 0x20 && u != '"' && u != '\\') continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (u) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[u >> 4];
        out += kHex[u & 0xF];
    }
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
}

void WriteJson(const Json& value, std::string& out) {
  switch (value.kind()) {
    case Json::Kind::kNull: out += "null"; break;
    case Json::Kind::kBool: out += value.AsBool() ? "true" : "false"; break;
    case Json::Kind::kNumber: out += value.Text(); break;
    case Json::Kind::kString: AppendJsonString(value.Text(), out); break;
    case Json::Kind::kObject: {
      out += '{';
      bool first = true;
      for (const auto& [k, v] : value.Members()) {
        if (!first) out += ',';
        first = false;
        AppendJsonString(k, out);
        out += ':';
        WriteJson(v, out);
      }
      out += '}';
      break;
    }
    case Json::Kind::kArray: {
      out += '[';
      bool first = true;
      for (const auto& v : value.Items()) {
        if (!first) out += ',';
        first = false;
        WriteJson(v, out);
      }
      out += ']';
      break;
    }
  }
}

std::string ToJsonText(const Json& value) {
  std::string out;
  WriteJson(value, out);
  return out;
}

}  // namespace kakehashi::gateway::detail
