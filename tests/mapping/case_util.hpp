// Helpers for mapping tests: JSON text of a Node and a deep compare that names the first
// difference by path.
#pragma once

#include "kakehashi/fhir/node.hpp"

#include <cstdio>
#include <set>
#include <string>

namespace kakehashi::testing {

inline void WriteJson(const fhir::Node& node, std::string& out, int indent = 0) {
  using K = fhir::Node::Kind;
  auto pad = [&out](int n) { out.append(static_cast<std::size_t>(n) * 2, ' '); };
  auto str = [&out](std::string_view s) {
    out += '"';
    for (char c : s) {
      auto u = static_cast<unsigned char>(c);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (u < 0x20) {
        char b[8];
        std::snprintf(b, sizeof b, "\\u%04x", u);
        out += b;
      } else {
        out += c;
      }
    }
    out += '"';
  };
  switch (node.kind()) {
    case K::kNull: out += "null"; break;
    case K::kBool: out += node.AsBool() ? "true" : "false"; break;
    case K::kNumber: out += node.Text(); break;
    case K::kString: str(node.Text()); break;
    case K::kArray:
      out += "[\n";
      for (std::size_t i = 0; i < node.Size(); ++i) {
        pad(indent + 1);
        WriteJson(node.Child(i), out, indent + 1);
        out += i + 1 < node.Size() ? ",\n" : "\n";
      }
      pad(indent);
      out += ']';
      break;
    case K::kObject:
      out += "{\n";
      for (std::size_t i = 0; i < node.Size(); ++i) {
        pad(indent + 1);
        str(node.Key(i));
        out += ": ";
        WriteJson(node.Child(i), out, indent + 1);
        out += i + 1 < node.Size() ? ",\n" : "\n";
      }
      pad(indent);
      out += '}';
      break;
  }
}

// "" when equal, else the path of the first difference ("entry[3].resource.birthDate").
// Paths in `ignore` use "[*]" for any array index ("entry[*].resource.meta").
inline std::string FirstDifference(const fhir::Node& a, const fhir::Node& b,
                                   const std::set<std::string>& ignore,
                                   const std::string& path = "", const std::string& pattern = "") {
  if (ignore.count(pattern) != 0) return {};
  if (a.kind() != b.kind()) return path.empty() ? "(root)" : path;
  using K = fhir::Node::Kind;
  switch (a.kind()) {
    case K::kNull: return {};
    case K::kBool: return a.AsBool() == b.AsBool() ? std::string() : path;
    case K::kNumber:
    case K::kString: return a.Text() == b.Text() ? std::string() : path;
    case K::kArray:
      if (a.Size() != b.Size()) return path + " (array size)";
      for (std::size_t i = 0; i < a.Size(); ++i) {
        auto d = FirstDifference(a.Child(i), b.Child(i), ignore,
                                 path + "[" + std::to_string(i) + "]", pattern + "[*]");
        if (!d.empty()) return d;
      }
      return {};
    case K::kObject: {
      for (std::size_t i = 0; i < a.Size(); ++i) {
        std::string p = path.empty() ? std::string(a.Key(i)) : path + "." + std::string(a.Key(i));
        std::string q =
            pattern.empty() ? std::string(a.Key(i)) : pattern + "." + std::string(a.Key(i));
        if (ignore.count(q) != 0) continue;
        const fhir::Node* other = b.Find(a.Key(i));
        if (other == nullptr) return p + " (missing on one side)";
        auto d = FirstDifference(a.Child(i), *other, ignore, p, q);
        if (!d.empty()) return d;
      }
      for (std::size_t i = 0; i < b.Size(); ++i) {
        std::string q =
            pattern.empty() ? std::string(b.Key(i)) : pattern + "." + std::string(b.Key(i));
        if (ignore.count(q) == 0 && a.Find(b.Key(i)) == nullptr) {
          return (path.empty() ? std::string(b.Key(i)) : path + "." + std::string(b.Key(i))) +
                 " (missing on one side)";
        }
      }
      return {};
    }
  }
  return {};
}

}  // namespace kakehashi::testing
