// A small JSON tree private to the gateway. It keeps number text ("1.50" stays "1.50") and object
// member order, rejects invalid UTF-8 and nesting deeper than a limit, and never throws.
//
// Why not fhir::Node + kakehashi/fhir/json.hpp: those had not landed when the gateway was written
// (docs/decisions/0005-gateway-private-json.md). The shape mirrors Node so the switch is
// mechanical.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kakehashi::gateway::detail {

class Json {
 public:
  enum class Kind : unsigned char { kNull, kBool, kNumber, kString, kObject, kArray };

  Json() = default;
  static Json Bool(bool v) {
    Json j;
    j.kind_ = Kind::kBool;
    j.bool_ = v;
    return j;
  }
  static Json Number(std::string text) {
    Json j;
    j.kind_ = Kind::kNumber;
    j.text_ = std::move(text);
    return j;
  }
  static Json String(std::string text) {
    Json j;
    j.kind_ = Kind::kString;
    j.text_ = std::move(text);
    return j;
  }
  static Json Object() {
    Json j;
    j.kind_ = Kind::kObject;
    return j;
  }
  static Json Array() {
    Json j;
    j.kind_ = Kind::kArray;
    return j;
  }

  Kind kind() const { return kind_; }
  bool IsNull() const { return kind_ == Kind::kNull; }
  bool IsBool() const { return kind_ == Kind::kBool; }
  bool IsNumber() const { return kind_ == Kind::kNumber; }
  bool IsString() const { return kind_ == Kind::kString; }
  bool IsObject() const { return kind_ == Kind::kObject; }
  bool IsArray() const { return kind_ == Kind::kArray; }
  bool AsBool() const { return bool_; }
  const std::string& Text() const { return text_; }
  // A string's or number's text moved out (the value keeps its kind, its text is unspecified).
  std::string ReleaseText() { return std::move(text_); }

  // Objects.
  const std::vector<std::pair<std::string, Json>>& Members() const { return members_; }
  std::vector<std::pair<std::string, Json>>& Members() { return members_; }
  const Json* Find(std::string_view key) const;
  Json* Find(std::string_view key);
  Json& Set(std::string key, Json value);  // replace or append
  bool Remove(std::string_view key);
  // The string member `key`, or "" when absent or not a string.
  std::string_view Str(std::string_view key) const;

  // Arrays.
  const std::vector<Json>& Items() const { return items_; }
  std::vector<Json>& Items() { return items_; }
  Json& Push(Json value);

 private:
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  std::string text_;
  std::vector<std::pair<std::string, Json>> members_;
  std::vector<Json> items_;
};

struct JsonError {
  std::size_t offset = 0;
  std::string message;  // never quotes input bytes (they may be patient data)
};

// Parses one JSON value (RFC 8259) with nothing but whitespace after it. Returns false and fills
// `error` on malformed input, invalid UTF-8, or nesting deeper than max_depth.
bool ParseJson(std::string_view text, Json& out, JsonError& error, int max_depth = 64);

// Compact serialisation; members in stored order.
void WriteJson(const Json& value, std::string& out);
std::string ToJsonText(const Json& value);
void AppendJsonString(std::string_view text, std::string& out);

}  // namespace kakehashi::gateway::detail
