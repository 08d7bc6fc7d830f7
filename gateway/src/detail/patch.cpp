#include "patch.hpp"

#include "kakehashi/fhir/r4/meta.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string_view>
#include <vector>

namespace kakehashi::gateway::detail {

namespace {

namespace r4 = kakehashi::fhir::r4;

bool Error(PatchError& e, PatchErrorKind kind, std::size_t op, std::string message) {
  e.kind = kind;
  e.operation = op;
  e.message = std::move(message);
  return false;
}

// The depth of the deepest node below `v` (0 for a scalar or an empty container).
int DepthOf(const Json& v) {
  int d = 0;
  if (v.IsObject()) {
    for (const auto& m : v.Members()) d = std::max(d, 1 + DepthOf(m.second));
  } else if (v.IsArray()) {
    for (const auto& i : v.Items()) d = std::max(d, 1 + DepthOf(i));
  }
  return d;
}

// Nodes plus string bytes (member names included): what a copy of `v` costs.
std::size_t WeightOf(const Json& v) {
  std::size_t w = 1 + v.Text().size();
  for (const auto& m : v.Members()) w += m.first.size() + WeightOf(m.second);
  for (const auto& i : v.Items()) w += WeightOf(i);
  return w;
}

bool NumbersEqual(const std::string& a, const std::string& b) {
  if (a == b) return true;
  return std::strtod(a.c_str(), nullptr) == std::strtod(b.c_str(), nullptr);
}

// RFC 6902 §4.6: equal type and value; objects whatever the member order.
bool JsonEqual(const Json& a, const Json& b) {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Json::Kind::kNull: return true;
    case Json::Kind::kBool: return a.AsBool() == b.AsBool();
    case Json::Kind::kNumber: return NumbersEqual(a.Text(), b.Text());
    case Json::Kind::kString: return a.Text() == b.Text();
    case Json::Kind::kArray:
      if (a.Items().size() != b.Items().size()) return false;
      for (std::size_t i = 0; i < a.Items().size(); ++i) {
        if (!JsonEqual(a.Items()[i], b.Items()[i])) return false;
      }
      return true;
    case Json::Kind::kObject:
      if (a.Members().size() != b.Members().size()) return false;
      for (const auto& [k, v] : a.Members()) {
        const Json* other = b.Find(k);
        if (other == nullptr || !JsonEqual(v, *other)) return false;
      }
      return true;
  }
  return false;
}

// RFC 6901 §3-4: "" is the whole document; otherwise '/'-separated tokens with ~1 -> '/' and
// ~0 -> '~' (any other '~' sequence is malformed).
std::optional<std::vector<std::string>> ParsePointer(std::string_view p) {
  std::vector<std::string> tokens;
  if (p.empty()) return tokens;
  if (p.front() != '/') return std::nullopt;
  p.remove_prefix(1);
  while (true) {
    const std::size_t slash = p.find('/');
    std::string_view raw = p.substr(0, slash);
    std::string token;
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '~') {
        token += raw[i];
        continue;
      }
      if (i + 1 >= raw.size() || (raw[i + 1] != '0' && raw[i + 1] != '1')) return std::nullopt;
      token += raw[i + 1] == '0' ? '~' : '/';
      ++i;
    }
    tokens.push_back(std::move(token));
    if (slash == std::string_view::npos) break;
    p.remove_prefix(slash + 1);
  }
  return tokens;
}

// An array index token (RFC 6901 §4: digits, no leading zero), or nullopt.
std::optional<std::size_t> ArrayIndex(const std::string& token) {
  if (token.empty() || token.size() > 9) return std::nullopt;
  if (token.size() > 1 && token[0] == '0') return std::nullopt;
  std::size_t n = 0;
  auto [ptr, ec] = std::from_chars(token.data(), token.data() + token.size(), n);
  if (ec != std::errc() || ptr != token.data() + token.size()) return std::nullopt;
  return n;
}

// The node at tokens[0, count), or nullptr.
Json* Walk(Json& doc, const std::vector<std::string>& tokens, std::size_t count) {
  Json* node = &doc;
  for (std::size_t i = 0; i < count; ++i) {
    if (node->IsObject()) {
      node = node->Find(tokens[i]);
    } else if (node->IsArray()) {
      auto idx = ArrayIndex(tokens[i]);
      if (!idx || *idx >= node->Items().size()) return nullptr;
      node = &node->Items()[*idx];
    } else {
      return nullptr;
    }
    if (node == nullptr) return nullptr;
  }
  return node;
}

class JsonPatcher {
 public:
  JsonPatcher(Json& doc, PatchError& error) : doc_(doc), error_(error) {}

  bool Apply(const Json& patch) {
    if (!patch.IsArray()) {
      return Error(error_, PatchErrorKind::kMalformed, 0,
                   "a JSON Patch document is an array of operations (RFC 6902 §3)");
    }
    if (patch.Items().size() > kMaxPatchOperations) {
      return Error(
          error_, PatchErrorKind::kUnprocessable, 0,
          "a patch may hold at most " + std::to_string(kMaxPatchOperations) + " operations");
    }
    for (std::size_t i = 0; i < patch.Items().size(); ++i) {
      op_ = i;
      if (!Operation(patch.Items()[i])) return false;
    }
    return true;
  }

 private:
  bool Fail(PatchErrorKind kind, std::string message) {
    return Error(error_, kind, op_, std::move(message));
  }

  bool Pointer(const Json& op, std::string_view member, std::vector<std::string>& out) {
    const Json* p = op.Find(member);
    if (p == nullptr || !p->IsString()) {
      return Fail(PatchErrorKind::kMalformed,
                  "the operation has no string \"" + std::string(member) + "\" (RFC 6902 §4)");
    }
    auto tokens = ParsePointer(p->Text());
    if (!tokens) {
      return Fail(PatchErrorKind::kMalformed,
                  "\"" + std::string(member) + "\" is not a JSON Pointer (RFC 6901)");
    }
    out = std::move(*tokens);
    return true;
  }

  bool Operation(const Json& op) {
    if (!op.IsObject()) return Fail(PatchErrorKind::kMalformed, "an operation is not an object");
    const Json* name = op.Find("op");
    if (name == nullptr || !name->IsString()) {
      return Fail(PatchErrorKind::kMalformed, "the operation has no string \"op\"");
    }
    const std::string& o = name->Text();
    std::vector<std::string> path;
    if (!Pointer(op, "path", path)) return false;
    if (o == "add" || o == "replace" || o == "test") {
      const Json* value = op.Find("value");
      if (value == nullptr) {
        return Fail(PatchErrorKind::kMalformed, "the " + o + " operation has no \"value\"");
      }
      if (o == "test") return Test(path, *value);
      if (o == "replace") return Replace(path, Json(*value));
      return Add(path, Json(*value));
    }
    if (o == "remove") return Remove(path, nullptr);
    if (o == "move" || o == "copy") {
      std::vector<std::string> from;
      if (!Pointer(op, "from", from)) return false;
      if (o == "move") {
        // RFC 6902 §4.4: "from" MUST NOT be a proper prefix of "path".
        if (from.size() < path.size() && std::equal(from.begin(), from.end(), path.begin())) {
          return Fail(PatchErrorKind::kConflict, "move into its own child");
        }
        Json moved;
        if (!Remove(from, &moved)) return false;
        return Add(path, std::move(moved), /*count=*/false);
      }
      const Json* source = Walk(doc_, from, from.size());
      if (source == nullptr) return Fail(PatchErrorKind::kConflict, "\"from\" names no value");
      return Add(path, Json(*source));
    }
    return Fail(PatchErrorKind::kMalformed,
                "unknown operation (RFC 6902 §4: add, remove, replace, move, copy, test)");
  }

  bool Admit(const std::vector<std::string>& path, const Json& value, bool count) {
    if (static_cast<int>(path.size()) + DepthOf(value) > kMaxPatchDepth) {
      return Fail(PatchErrorKind::kUnprocessable,
                  "the patched resource would be nested deeper than " +
                      std::to_string(kMaxPatchDepth) + " levels");
    }
    if (count) {
      growth_ += WeightOf(value);
      if (growth_ > kMaxPatchGrowth) {
        return Fail(PatchErrorKind::kUnprocessable, "the patch adds too much content");
      }
    }
    return true;
  }

  // RFC 6902 §4.3: the target must exist; replaced in place (an object keeps its member order).
  bool Replace(const std::vector<std::string>& path, Json value) {
    Json* target = Walk(doc_, path, path.size());
    if (target == nullptr) return Fail(PatchErrorKind::kConflict, "the target is absent");
    if (!Admit(path, value, true)) return false;
    *target = std::move(value);
    return true;
  }

  // RFC 6902 §4.1; `count`: the value is new (moves are not).
  bool Add(const std::vector<std::string>& path, Json value, bool count = true) {
    if (!Admit(path, value, count)) return false;
    if (path.empty()) {
      doc_ = std::move(value);
      return true;
    }
    Json* parent = Walk(doc_, path, path.size() - 1);
    if (parent == nullptr) return Fail(PatchErrorKind::kConflict, "the target's parent is absent");
    const std::string& last = path.back();
    if (parent->IsObject()) {
      parent->Set(last, std::move(value));
      return true;
    }
    if (parent->IsArray()) {
      auto& items = parent->Items();
      if (last == "-") {
        items.push_back(std::move(value));
        return true;
      }
      auto idx = ArrayIndex(last);
      if (!idx) return Fail(PatchErrorKind::kMalformed, "an array index is not a number");
      if (*idx > items.size()) return Fail(PatchErrorKind::kConflict, "array index out of range");
      items.insert(items.begin() + static_cast<std::ptrdiff_t>(*idx), std::move(value));
      return true;
    }
    return Fail(PatchErrorKind::kConflict, "the target's parent is not an object or array");
  }

  // RFC 6902 §4.2; the removed value into `out` when given.
  bool Remove(const std::vector<std::string>& path, Json* out) {
    if (path.empty()) {
      return Fail(PatchErrorKind::kUnprocessable, "the whole resource cannot be removed");
    }
    Json* parent = Walk(doc_, path, path.size() - 1);
    if (parent == nullptr) return Fail(PatchErrorKind::kConflict, "the target is absent");
    const std::string& last = path.back();
    if (parent->IsObject()) {
      Json* target = parent->Find(last);
      if (target == nullptr) return Fail(PatchErrorKind::kConflict, "the target is absent");
      if (out != nullptr) *out = std::move(*target);
      parent->Remove(last);
      return true;
    }
    if (parent->IsArray()) {
      auto idx = ArrayIndex(last);
      auto& items = parent->Items();
      if (!idx || *idx >= items.size())
        return Fail(PatchErrorKind::kConflict, "the target is absent");
      if (out != nullptr) *out = std::move(items[*idx]);
      items.erase(items.begin() + static_cast<std::ptrdiff_t>(*idx));
      return true;
    }
    return Fail(PatchErrorKind::kConflict, "the target is absent");
  }

  bool Test(const std::vector<std::string>& path, const Json& value) {
    const Json* target = Walk(doc_, path, path.size());
    if (target == nullptr) return Fail(PatchErrorKind::kConflict, "test: the target is absent");
    if (!JsonEqual(*target, value)) {
      return Fail(PatchErrorKind::kConflict, "test: the value differs");
    }
    return true;
  }

  Json& doc_;
  PatchError& error_;
  std::size_t op_ = 0;
  std::size_t growth_ = 0;
};

// ------------------------------------------------------------------ FHIRPath Patch subset

// One element a path selects: the object holding it, the member, and its place in the member's
// array (npos for a single value).
struct Slot {
  Json* owner = nullptr;
  std::string member;
  std::size_t index = std::string::npos;
  const r4::TypeInfo* type = nullptr;  // the value's type, nullptr when unknown
  const r4::ElementInfo* element = nullptr;
  Json* Value() const {
    Json* v = owner->Find(member);
    if (v == nullptr) return nullptr;
    if (index == std::string::npos) return v;
    if (!v->IsArray() || index >= v->Items().size()) return nullptr;
    return &v->Items()[index];
  }
};

struct Step {
  std::string name;
  std::optional<std::size_t> index;
};

bool IsIdentifier(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// An element of `t` by its FHIRPath name: a JSON name, or a choice's name without its type
// ("value" of value[x]: choice_type and type stay empty).
r4::ElementMatch ElementByName(const r4::TypeInfo& t, std::string_view name) {
  r4::ElementMatch match = t.MatchElement(name);
  if (match.element != nullptr) return match;
  for (const r4::ElementInfo& e : t.elements) {
    if (e.is_choice && e.name == name) {
      match.element = &e;
      return match;
    }
  }
  return match;
}

// The type of an object's members: its own resourceType when it is a resource (contained ones),
// else `declared`.
const r4::TypeInfo* TypeOfObject(const Json& node, const r4::TypeInfo* declared) {
  if (std::string_view rt = node.Str("resourceType"); !rt.empty()) {
    if (const r4::TypeInfo* t = r4::FindType(rt)) return t;
  }
  return declared;
}

class FhirPathPatcher {
 public:
  FhirPathPatcher(Json& resource, const std::string& type, PatchError& error)
      : resource_(resource), type_(type), error_(error) {}

  bool Apply(const Json& parameters) {
    if (!parameters.IsObject() || parameters.Str("resourceType") != "Parameters") {
      return Fail(PatchErrorKind::kMalformed, "a FHIRPath Patch is a Parameters resource");
    }
    const Json* params = parameters.Find("parameter");
    if (params == nullptr) return true;  // no operations
    if (!params->IsArray()) return Fail(PatchErrorKind::kMalformed, "parameter is not an array");
    if (params->Items().size() > kMaxPatchOperations) {
      return Fail(
          PatchErrorKind::kUnprocessable,
          "a patch may hold at most " + std::to_string(kMaxPatchOperations) + " operations");
    }
    for (std::size_t i = 0; i < params->Items().size(); ++i) {
      op_ = i;
      if (!Operation(params->Items()[i])) return false;
    }
    return true;
  }

 private:
  bool Fail(PatchErrorKind kind, std::string message) {
    return Error(error_, kind, op_, std::move(message));
  }

  // The part named `name` of an operation, or nullptr.
  static const Json* Part(const Json& parts, std::string_view name) {
    for (const Json& p : parts.Items()) {
      if (p.IsObject() && p.Str("name") == name) return &p;
    }
    return nullptr;
  }

  // A part's value[x] member: its JSON name and value; false when it has none.
  static bool PartValue(const Json& part, std::string& key, const Json*& value) {
    for (const auto& [k, v] : part.Members()) {
      if (k.size() > 5 && k.starts_with("value") &&
          std::isupper(static_cast<unsigned char>(k[5]))) {
        key = k;
        value = &v;
        return true;
      }
    }
    return false;
  }

  bool StringPart(const Json& parts, std::string_view name, std::string& out) {
    const Json* p = Part(parts, name);
    std::string key;
    const Json* v = nullptr;
    if (p == nullptr || !PartValue(*p, key, v) || !v->IsString()) {
      return Fail(PatchErrorKind::kMalformed,
                  "the operation has no string part \"" + std::string(name) + "\"");
    }
    out = v->Text();
    return true;
  }

  bool IndexPart(const Json& parts, std::string_view name, std::size_t& out) {
    const Json* p = Part(parts, name);
    std::string key;
    const Json* v = nullptr;
    if (p == nullptr || !PartValue(*p, key, v) || !v->IsNumber()) {
      return Fail(PatchErrorKind::kMalformed,
                  "the operation has no integer part \"" + std::string(name) + "\"");
    }
    const std::string& t = v->Text();
    auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
    if (ec != std::errc() || ptr != t.data() + t.size()) {
      return Fail(PatchErrorKind::kMalformed,
                  "part \"" + std::string(name) + "\" is not a non-negative integer");
    }
    return true;
  }

  // The value part: its JSON type suffix ("HumanName" of valueHumanName) and value.
  bool ValuePart(const Json& parts, std::string& suffix, const Json*& value) {
    const Json* p = Part(parts, "value");
    if (p == nullptr) return Fail(PatchErrorKind::kMalformed, "the operation has no value part");
    std::string key;
    if (!PartValue(*p, key, value)) {
      if (p->Find("part") != nullptr) {
        return Fail(PatchErrorKind::kUnsupported,
                    "a value given as parts (an anonymous element) is not supported; send the "
                    "value as value[x]");
      }
      return Fail(PatchErrorKind::kMalformed, "the value part has no value[x]");
    }
    suffix = key.substr(5);
    if (static_cast<int>(DepthOf(*value)) + depth_budget_ > kMaxPatchDepth) {
      return Fail(PatchErrorKind::kUnprocessable, "the value is nested too deeply");
    }
    growth_ += WeightOf(*value);
    if (growth_ > kMaxPatchGrowth) {
      return Fail(PatchErrorKind::kUnprocessable, "the patch adds too much content");
    }
    return true;
  }

  // "Patient.name[0].given" -> steps after the type; anything else is unsupported or malformed.
  bool ParsePath(const std::string& path, std::vector<Step>& steps) {
    std::string_view p = path;
    bool first = true;
    while (true) {
      const std::size_t dot = p.find('.');
      std::string_view seg = p.substr(0, dot);
      Step step;
      if (auto open = seg.find('['); open != std::string_view::npos) {
        if (seg.back() != ']') return Fail(PatchErrorKind::kUnsupported, "unsupported path");
        std::string_view digits = seg.substr(open + 1, seg.size() - open - 2);
        std::size_t n = 0;
        auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
        if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) {
          return Fail(PatchErrorKind::kUnsupported,
                      "unsupported path: an index must be a non-negative integer");
        }
        step.index = n;
        seg = seg.substr(0, open);
      }
      if (!IsIdentifier(seg)) {
        return Fail(PatchErrorKind::kUnsupported,
                    "unsupported path: only member names and [n] indexes are supported "
                    "(docs/gateway.md, PATCH)");
      }
      if (first) {
        if (seg != type_) {
          return Fail(PatchErrorKind::kMalformed, "the path must start with " + type_);
        }
        if (step.index && *step.index != 0) {
          root_out_of_range_ = true;
        }
        first = false;
      } else {
        step.name = std::string(seg);
        steps.push_back(std::move(step));
      }
      if (dot == std::string_view::npos) break;
      p.remove_prefix(dot + 1);
    }
    if (steps.size() + 1 > static_cast<std::size_t>(kMaxPatchDepth)) {
      return Fail(PatchErrorKind::kUnsupported, "the path is too long");
    }
    depth_budget_ = static_cast<int>(steps.size()) * 2 + 1;
    return true;
  }

  // The elements `steps` select (FHIRPath: each step flattens; an index picks from the whole
  // collection). The root is the resource: an empty `steps` gives no Slot (see Evaluate users).
  bool Evaluate(const std::vector<Step>& steps, std::vector<Slot>& out) {
    struct Node {
      Json* json;
      const r4::TypeInfo* type;
    };
    std::vector<Node> current{{&resource_, r4::FindType(type_)}};
    if (root_out_of_range_) current.clear();
    std::vector<Slot> slots;
    for (const Step& step : steps) {
      slots.clear();
      for (const Node& n : current) {
        if (!n.json->IsObject()) continue;
        const r4::TypeInfo* t = TypeOfObject(*n.json, n.type);
        if (t == nullptr) {
          return Fail(PatchErrorKind::kUnsupported, "the path enters an element of unknown type");
        }
        r4::ElementMatch match = ElementByName(*t, step.name);
        if (match.element == nullptr) {
          return Fail(PatchErrorKind::kMalformed,
                      "the path names no element of " + std::string(t->name));
        }
        // A choice named without its type ("Observation.value") is the member it is present as.
        std::string member = step.name;
        const r4::TypeInfo* value_type = match.type;
        if (match.element->is_choice && match.choice_type.empty()) {
          member.clear();
          for (const auto& [k, v] : n.json->Members()) {
            std::string_view choice;
            if (k.size() > step.name.size() && k.starts_with(step.name) &&
                t->FindElement(k, &choice) == match.element) {
              member = k;
              value_type = r4::FindType(choice);
              break;
            }
          }
          if (member.empty()) continue;
        }
        Json* v = n.json->Find(member);
        if (v == nullptr) continue;
        if (v->IsArray()) {
          for (std::size_t i = 0; i < v->Items().size(); ++i) {
            slots.push_back(Slot{n.json, member, i, value_type, match.element});
          }
        } else {
          slots.push_back(Slot{n.json, member, std::string::npos, value_type, match.element});
        }
      }
      if (step.index) {
        if (*step.index < slots.size()) {
          Slot keep = slots[*step.index];
          slots.assign(1, keep);
        } else {
          slots.clear();
        }
      }
      current.clear();
      for (const Slot& s : slots) current.push_back(Node{s.Value(), s.type});
    }
    out = std::move(slots);
    return true;
  }

  // The single object `steps` select (the resource itself for no steps) and its type.
  bool Target(const std::vector<Step>& steps, Json*& node, const r4::TypeInfo*& type) {
    if (steps.empty()) {
      if (root_out_of_range_) return Fail(PatchErrorKind::kConflict, "the path selects nothing");
      node = &resource_;
      type = r4::FindType(type_);
      return true;
    }
    std::vector<Slot> slots;
    if (!Evaluate(steps, slots)) return false;
    if (slots.size() != 1) {
      return Fail(PatchErrorKind::kConflict,
                  slots.empty() ? "the path selects nothing" : "the path selects several elements");
    }
    node = slots[0].Value();
    type = slots[0].type;
    if (node == nullptr || !node->IsObject()) {
      return Fail(PatchErrorKind::kConflict, "the path does not select an element with children");
    }
    type = TypeOfObject(*node, type);
    if (type == nullptr) return Fail(PatchErrorKind::kUnsupported, "element of unknown type");
    return true;
  }

  // The list `steps` names (its last step unindexed): the object holding it and the member.
  bool List(const std::vector<Step>& steps, Json*& owner, std::string& member) {
    if (steps.empty() || steps.back().index) {
      return Fail(PatchErrorKind::kMalformed,
                  "the path must name a list (no index on its last step)");
    }
    std::vector<Step> parent(steps.begin(), steps.end() - 1);
    const r4::TypeInfo* type = nullptr;
    if (!Target(parent, owner, type)) return false;
    r4::ElementMatch match = type->MatchElement(steps.back().name);
    if (match.element == nullptr || !match.element->IsArray()) {
      return Fail(PatchErrorKind::kMalformed, "the path does not name a repeating element");
    }
    member = steps.back().name;
    return true;
  }

  bool Operation(const Json& param) {
    if (!param.IsObject() || param.Str("name") != "operation") {
      return Fail(PatchErrorKind::kMalformed, "a FHIRPath Patch parameter must be an operation");
    }
    const Json* parts = param.Find("part");
    if (parts == nullptr || !parts->IsArray()) {
      return Fail(PatchErrorKind::kMalformed, "the operation has no parts");
    }
    std::string op, path;
    if (!StringPart(*parts, "type", op) || !StringPart(*parts, "path", path)) return false;
    std::vector<Step> steps;
    root_out_of_range_ = false;
    if (!ParsePath(path, steps)) return false;
    if (op == "add") {
      std::string name, suffix;
      const Json* value = nullptr;
      if (!StringPart(*parts, "name", name) || !ValuePart(*parts, suffix, value)) return false;
      Json* node = nullptr;
      const r4::TypeInfo* type = nullptr;
      if (!Target(steps, node, type)) return false;
      r4::ElementMatch match = ElementByName(*type, name);
      if (match.element == nullptr) {
        return Fail(PatchErrorKind::kMalformed,
                    "add: the name is no element of " + std::string(type->name));
      }
      std::string member =
          match.element->is_choice && match.choice_type.empty() ? name + suffix : name;
      Json* existing = node->Find(member);
      if (match.element->IsArray()) {
        if (existing == nullptr) existing = &node->Set(member, Json::Array());
        if (!existing->IsArray()) return Fail(PatchErrorKind::kConflict, "add: not a list");
        existing->Items().push_back(*value);
        return true;
      }
      if (existing != nullptr) {
        return Fail(PatchErrorKind::kConflict, "add: the element already has a value");
      }
      node->Set(member, *value);
      return true;
    }
    if (op == "insert" || op == "move") {
      Json* owner = nullptr;
      std::string member;
      if (!List(steps, owner, member)) return false;
      Json* list = owner->Find(member);
      if (op == "insert") {
        std::string suffix;
        const Json* value = nullptr;
        std::size_t index = 0;
        if (!ValuePart(*parts, suffix, value) || !IndexPart(*parts, "index", index)) return false;
        if (list == nullptr) list = &owner->Set(member, Json::Array());
        if (!list->IsArray()) return Fail(PatchErrorKind::kConflict, "insert: not a list");
        if (index > list->Items().size()) {
          return Fail(PatchErrorKind::kConflict, "insert: index past the end of the list");
        }
        list->Items().insert(list->Items().begin() + static_cast<std::ptrdiff_t>(index), *value);
        return true;
      }
      std::size_t source = 0, destination = 0;
      if (!IndexPart(*parts, "source", source) || !IndexPart(*parts, "destination", destination)) {
        return false;
      }
      if (list == nullptr || !list->IsArray() || source >= list->Items().size() ||
          destination >= list->Items().size()) {
        return Fail(PatchErrorKind::kConflict, "move: index outside the list");
      }
      auto& items = list->Items();
      Json moved = std::move(items[source]);
      items.erase(items.begin() + static_cast<std::ptrdiff_t>(source));
      items.insert(items.begin() + static_cast<std::ptrdiff_t>(destination), std::move(moved));
      return true;
    }
    if (op == "delete" || op == "replace") {
      if (steps.empty()) {
        return Fail(PatchErrorKind::kUnprocessable, op + ": the whole resource cannot be changed");
      }
      std::string suffix;
      const Json* value = nullptr;
      if (op == "replace" && !ValuePart(*parts, suffix, value)) return false;
      std::vector<Slot> slots;
      if (!Evaluate(steps, slots)) return false;
      if (slots.size() > 1) {
        return Fail(PatchErrorKind::kConflict, op + ": the path selects several elements");
      }
      if (slots.empty()) {
        if (op == "delete") return true;  // R4: "delete ... (if found)"
        return Fail(PatchErrorKind::kConflict, "replace: the path selects nothing");
      }
      Slot& s = slots[0];
      Json* member = s.owner->Find(s.member);
      if (op == "delete") {
        if (s.index == std::string::npos) {
          s.owner->Remove(s.member);
        } else {
          member->Items().erase(member->Items().begin() + static_cast<std::ptrdiff_t>(s.index));
          if (member->Items().empty()) s.owner->Remove(s.member);
        }
        return true;
      }
      if (s.element->is_choice && s.index == std::string::npos) {
        // A choice takes the new value's type: valueString replaced by valueQuantity.
        std::string base(s.element->name);
        for (auto& [k, v] : s.owner->Members()) {
          if (k == s.member) {
            k = base + suffix;
            v = *value;
          }
        }
        return true;
      }
      *s.Value() = *value;
      return true;
    }
    return Fail(PatchErrorKind::kMalformed,
                "unknown FHIRPath Patch operation (R4: add, insert, delete, replace, move)");
  }

  Json& resource_;
  const std::string& type_;
  PatchError& error_;
  std::size_t op_ = 0;
  std::size_t growth_ = 0;
  int depth_budget_ = 0;
  bool root_out_of_range_ = false;
};

}  // namespace

std::optional<std::string> DecodeBase64(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3);
  std::uint32_t bits = 0;
  int have = 0;
  bool padding = false;
  for (char c : text) {
    int v = -1;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else if (c == '=') {
      padding = true;
      continue;
    } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t') {
      continue;
    } else {
      return std::nullopt;
    }
    if (padding) return std::nullopt;  // data after '='
    bits = (bits << 6) | static_cast<std::uint32_t>(v);
    have += 6;
    if (have >= 8) {
      have -= 8;
      out += static_cast<char>((bits >> have) & 0xFFu);
    }
  }
  return out;
}

bool ApplyJsonPatch(Json& doc, const Json& patch, PatchError& error) {
  return JsonPatcher(doc, error).Apply(patch);
}

bool ApplyFhirPathPatch(Json& resource, const std::string& type, const Json& parameters,
                        PatchError& error) {
  return FhirPathPatcher(resource, type, error).Apply(parameters);
}

}  // namespace kakehashi::gateway::detail
