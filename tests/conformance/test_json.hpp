// Test helper: a small strict JSON -> fhir::Node reader so the conformance tests build their
// inputs from JSON text. Numbers keep their text, member order is kept, duplicate keys and
// trailing garbage are rejected. Test-only: the product reads JSON through fhir/.
#pragma once

#include "kakehashi/fhir/node.hpp"

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kakehashi::conformance::testing {

class JsonReader {
 public:
  explicit JsonReader(std::string_view text) : text_(text) {}

  // Throws std::runtime_error on malformed input (tests only).
  fhir::Node ReadDocument() {
    fhir::Node node = Value(0);
    Space();
    if (pos_ != text_.size()) Fail("trailing characters");
    return node;
  }

 private:
  [[noreturn]] void Fail(const char* what) {
    throw std::runtime_error(std::string("test JSON: ") + what + " at byte " +
                             std::to_string(pos_));
  }
  void Space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r' || text_[pos_] == '\t')) {
      ++pos_;
    }
  }
  bool Eat(char c) {
    Space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool Literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) == word) {
      pos_ += word.size();
      return true;
    }
    return false;
  }
  static void AppendUtf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  unsigned Hex4() {
    if (pos_ + 4 > text_.size()) Fail("short \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') {
        v |= static_cast<unsigned>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        v |= static_cast<unsigned>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        v |= static_cast<unsigned>(c - 'A' + 10);
      } else {
        Fail("bad \\u escape");
      }
    }
    return v;
  }
  std::string String() {
    if (!Eat('"')) Fail("expected string");
    std::string out;
    while (true) {
      if (pos_ >= text_.size()) Fail("unterminated string");
      const char c = text_[pos_++];
      if (c == '"') break;
      if (static_cast<unsigned char>(c) < 0x20) Fail("control character in string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= text_.size()) Fail("bad escape");
      const char e = text_[pos_++];
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
          unsigned cp = Hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && Literal("\\u")) {
            const unsigned low = Hex4();
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          AppendUtf8(out, cp);
          break;
        }
        default: Fail("bad escape");
      }
    }
    return out;
  }
  fhir::Node Value(int depth) {
    if (depth > 500) Fail("too deep");
    Space();
    if (pos_ >= text_.size()) Fail("unexpected end");
    const char c = text_[pos_];
    if (c == '{') {
      ++pos_;
      fhir::Node object = fhir::Node::Object();
      if (Eat('}')) return object;
      do {
        std::string key = String();
        if (object.Find(key) != nullptr) Fail("duplicate key");
        if (!Eat(':')) Fail("expected ':'");
        object.Set(std::move(key), Value(depth + 1));
      } while (Eat(','));
      if (!Eat('}')) Fail("expected '}'");
      return object;
    }
    if (c == '[') {
      ++pos_;
      fhir::Node array = fhir::Node::Array();
      if (Eat(']')) return array;
      do {
        array.Push(Value(depth + 1));
      } while (Eat(','));
      if (!Eat(']')) Fail("expected ']'");
      return array;
    }
    if (c == '"') return fhir::Node::String(String());
    if (Literal("true")) return fhir::Node::Bool(true);
    if (Literal("false")) return fhir::Node::Bool(false);
    if (Literal("null")) return fhir::Node::Null();
    const std::size_t start = pos_;
    if (text_[pos_] == '-') ++pos_;
    while (pos_ < text_.size() &&
           (std::string_view("0123456789.eE+-").find(text_[pos_]) != std::string_view::npos)) {
      ++pos_;
    }
    if (pos_ == start) Fail("unexpected character");
    return fhir::Node::Number(std::string(text_.substr(start, pos_ - start)));
  }

  std::string_view text_;
  std::size_t pos_ = 0;
};

inline fhir::Node Json(std::string_view text) {
  return JsonReader(text).ReadDocument();
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace kakehashi::conformance::testing
