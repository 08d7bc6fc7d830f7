// FHIR JSON reader/writer over Node (contract in json.hpp).
//
// The parser is RapidJSON's iterative SAX reader (kParseIterativeFlag: no recursion, so 10,000
// nested '[' cannot overflow the stack) with kParseNumbersAsStringsFlag (decimals keep their
// text, http://hl7.org/fhir/R4/json.html#primitive: "1.50" must round-trip) and
// kParseValidateEncodingFlag (FHIR JSON is UTF-8). Our handler builds the Node with an explicit
// stack and stops at the depth limit.
#include "kakehashi/fhir/json.hpp"

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "kakehashi/fhir/r4/meta.hpp"

namespace kakehashi::fhir {
namespace {

constexpr std::string_view kCodeSyntax = "fhir.json.syntax";
constexpr std::string_view kCodeEncoding = "fhir.json.encoding";
constexpr std::string_view kCodeTooDeep = "fhir.json.too_deep";
constexpr std::string_view kCodeTooLarge = "fhir.json.too_large";
constexpr std::string_view kCodeDuplicateKey = "fhir.json.duplicate_key";
constexpr std::string_view kCodeNotObject = "fhir.json.not_object";
constexpr std::string_view kCodeMissingResourceType = "fhir.json.missing_resource_type";
constexpr std::string_view kCodeUnknownResourceType = "fhir.json.unknown_resource_type";
constexpr std::string_view kCodeUnknownElement = "fhir.json.unknown_element";
constexpr std::string_view kCodeWrongType = "fhir.json.wrong_type";
constexpr std::string_view kCodeExpectedArray = "fhir.json.expected_array";
constexpr std::string_view kCodeUnexpectedArray = "fhir.json.unexpected_array";
constexpr std::string_view kCodeBadPrimitiveExtension = "fhir.json.bad_primitive_extension";
constexpr std::string_view kCodeNullValue = "fhir.json.null_value";

// ---- parsing --------------------------------------------------------------------------------

// SAX handler building a Node tree. Frames hold the container being filled and, for objects,
// the pending key. Keys and array indexes are kept so an error can name the JSON path reached.
class Builder {
 public:
  explicit Builder(std::size_t max_depth) : max_depth_(max_depth) {}

  bool Null() { return Add(Node()); }
  bool Bool(bool b) { return Add(Node::Bool(b)); }
  bool Int(int) { return false; }  // unreachable with kParseNumbersAsStringsFlag
  bool Uint(unsigned) { return false; }
  bool Int64(std::int64_t) { return false; }
  bool Uint64(std::uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
    return Add(Node::Number(std::string(str, length)));
  }
  bool String(const char* str, rapidjson::SizeType length, bool) {
    return Add(Node::String(std::string(str, length)));
  }
  bool StartObject() { return Open(Node::Object()); }
  bool Key(const char* str, rapidjson::SizeType length, bool) {
    stack_.back().key.assign(str, length);
    return true;
  }
  bool EndObject(rapidjson::SizeType) { return Close(); }
  bool StartArray() { return Open(Node::Array()); }
  bool EndArray(rapidjson::SizeType) { return Close(); }

  bool too_deep() const { return too_deep_; }
  Node TakeRoot() { return std::move(root_); }
  const std::vector<std::string>& duplicate_paths() const { return duplicates_; }

  // "name[0].given" style path of the position reached (for syntax errors).
  std::string Path() const {
    std::string path;
    for (std::size_t i = 0; i < stack_.size(); ++i) {
      const Frame& f = stack_[i];
      if (f.node.IsArray()) {
        path += "[" + std::to_string(f.node.Size()) + "]";
      } else if (!f.key.empty()) {
        if (!path.empty()) path += '.';
        path += f.key;
      }
    }
    return path;
  }

 private:
  struct Frame {
    Node node;
    std::string key;
  };

  bool Open(Node container) {
    if (stack_.size() >= max_depth_) {
      too_deep_ = true;
      return false;
    }
    stack_.push_back({std::move(container), {}});
    return true;
  }

  bool Close() {
    Node done = std::move(stack_.back().node);
    stack_.pop_back();
    return Add(std::move(done));
  }

  bool Add(Node value) {
    if (stack_.empty()) {
      root_ = std::move(value);
      return true;
    }
    Frame& top = stack_.back();
    if (top.node.IsArray()) {
      top.node.Push(std::move(value));
    } else {
      if (top.node.Find(top.key) != nullptr) {
        duplicates_.push_back(Path());
        top.node.Set(std::move(top.key), std::move(value));
      } else {
        top.node.Append(std::move(top.key), std::move(value));
      }
      top.key.clear();
    }
    return true;
  }

  std::size_t max_depth_;
  bool too_deep_ = false;
  std::vector<Frame> stack_;
  Node root_;
  std::vector<std::string> duplicates_;
};

struct ParseFailure {
  errc code = errc::kJsonSyntax;
  std::size_t offset = 0;
  std::string message;
  std::string path;
};

std::optional<Node> Parse(std::string_view text, const JsonLimits& limits, ParseFailure& failure,
                          std::vector<std::string>* duplicates) {
  if (text.size() > limits.max_bytes) {
    failure = {errc::kJsonTooLarge,
               0,
               "JSON text of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                   std::to_string(limits.max_bytes),
               {}};
    return std::nullopt;
  }
  Builder builder(limits.max_depth);
  rapidjson::Reader reader;
  rapidjson::MemoryStream stream(text.data(), text.size());
  constexpr unsigned kFlags =
      rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag |
      rapidjson::kParseValidateEncodingFlag | rapidjson::kParseStopWhenDoneFlag;
  rapidjson::ParseResult result = reader.Parse<kFlags>(stream, builder);
  if (result) {
    // kParseStopWhenDoneFlag stops after the root value; only whitespace may follow it.
    std::size_t pos = result.Offset();
    pos = stream.Tell();
    while (pos < text.size() &&
           (text[pos] == ' ' || text[pos] == '\n' || text[pos] == '\r' || text[pos] == '\t'))
      ++pos;
    if (pos != text.size()) {
      failure = {errc::kJsonSyntax, pos, "unexpected content after the JSON value", {}};
      return std::nullopt;
    }
    if (duplicates != nullptr) *duplicates = builder.duplicate_paths();
    return builder.TakeRoot();
  }
  failure.offset = result.Offset();
  failure.path = builder.Path();
  if (builder.too_deep()) {
    failure.code = errc::kJsonTooDeep;
    failure.message = "JSON nesting exceeds the limit of " + std::to_string(limits.max_depth);
  } else if (result.Code() == rapidjson::kParseErrorStringInvalidEncoding) {
    failure.code = errc::kJsonEncoding;
    failure.message = "string is not valid UTF-8";
  } else {
    failure.code = errc::kJsonSyntax;
    failure.message = std::string("malformed JSON: ") + rapidjson::GetParseError_En(result.Code());
  }
  return std::nullopt;
}

std::string_view FailureCode(errc code) {
  switch (code) {
    case errc::kJsonEncoding: return kCodeEncoding;
    case errc::kJsonTooDeep: return kCodeTooDeep;
    case errc::kJsonTooLarge: return kCodeTooLarge;
    default: return kCodeSyntax;
  }
}

// ---- metadata-driven member resolution (shared by checker and writer) -----------------------

struct Member {
  const r4::ElementInfo* element = nullptr;
  std::size_t element_index = 0;
  const r4::TypeInfo* type = nullptr;  // nullptr for Resource-typed elements (ask resourceType)
  bool underscore = false;             // "_x" partner of a primitive
  bool is_resource = false;            // element of type Resource (contained, entry.resource)
};

// Resolves the JSON member `key` of an object of `type`. Returns false for unknown members.
bool Resolve(const r4::TypeInfo& type, std::string_view key, Member& member) {
  member = {};
  std::string_view name = key;
  if (!name.empty() && name[0] == '_') {
    member.underscore = true;
    name.remove_prefix(1);
  }
  // Hashed (r4::TypeInfo::MatchElement). The checker leaves elements typed with a FHIRPath
  // System.* code (Element.id, Extension.url) unchecked, as it always has: no value type.
  const r4::ElementMatch match = type.MatchElement(name);
  if (match.element == nullptr) return false;
  member.element = match.element;
  member.element_index = static_cast<std::size_t>(match.element - type.elements.data());
  member.type = match.system_type ? nullptr : match.type;
  member.is_resource = member.type != nullptr && member.type->kind == r4::TypeKind::kResource;
  return true;
}

// ---- checking -------------------------------------------------------------------------------

class Checker {
 public:
  Checker(IssueSink& issues, const Location& base) : issues_(issues), base_(base) {}

  bool ok() const { return ok_; }

  // `path_` holds the FHIRPath of the value being checked; members append to it and truncate
  // back, so no string is allocated per member unless an issue is reported.
  void Resource(const Node& node) {
    if (!node.IsObject()) {
      Report(kCodeNotObject, "a resource must be a JSON object");
      return;
    }
    const Node* type_node = node.Find("resourceType");
    if (type_node == nullptr || !type_node->IsString()) {
      Report(kCodeMissingResourceType,
             "a resource needs a 'resourceType' string member (json.html#resources)");
      return;
    }
    const std::string_view type_name = type_node->Text();
    const r4::TypeInfo* type = r4::FindType(type_name);
    if (type == nullptr || type->kind != r4::TypeKind::kResource || type->is_abstract) {
      Report(kCodeUnknownResourceType,
             "'resourceType' does not name a concrete FHIR R4 resource type");
      return;
    }
    const bool root = path_.empty();
    if (root) path_ = type_name;
    Object(node, *type, /*is_resource=*/true);
    if (root) path_.clear();
  }

  void SetPath(std::string path) { path_ = std::move(path); }

 private:
  void Report(std::string_view code, std::string message) {
    Location where = base_;
    where.fhir_path = path_;
    issues_.Error(code, std::move(where), std::move(message));
    ok_ = false;
  }

  std::size_t PushKey(std::string_view key) {
    const std::size_t old = path_.size();
    if (!path_.empty()) path_ += '.';
    path_ += key;
    return old;
  }
  std::size_t PushIndex(std::size_t index) {
    const std::size_t old = path_.size();
    path_ += '[';
    path_ += std::to_string(index);
    path_ += ']';
    return old;
  }
  void Pop(std::size_t old) { path_.resize(old); }

  void Object(const Node& node, const r4::TypeInfo& type, bool is_resource) {
    if (++depth_ > kMaxDepth) {  // only reachable for Nodes built in code; parsed ones are bounded
      Report(kCodeTooDeep, "elements are nested too deeply");
      --depth_;
      return;
    }
    for (std::size_t i = 0; i < node.Size(); ++i) {
      const std::string_view key = node.Key(i);
      const Node& value = node.Child(i);
      if (is_resource && key == "resourceType") continue;
      const std::size_t old = PushKey(key);
      Member member;
      if (!Resolve(type, key, member)) {
        Report(kCodeUnknownElement,
               "'" + std::string(key) + "' is not an element of " + std::string(type.name));
      } else if (member.underscore) {
        PrimitiveExtension(node, key, value, member);
      } else {
        Element(node, key, value, member);
      }
      Pop(old);
    }
    --depth_;
  }

  static bool HasPartner(const Node& parent, std::string_view key) {
    for (std::size_t i = 0; i < parent.Size(); ++i) {
      const std::string_view k = parent.Key(i);
      if (k.size() == key.size() + 1 && k[0] == '_' && k.compare(1, std::string::npos, key) == 0)
        return true;
    }
    return false;
  }

  void Element(const Node& parent, std::string_view key, const Node& value, const Member& member) {
    if (member.element->IsArray()) {
      if (!value.IsArray()) {
        Report(kCodeExpectedArray, "element '" + std::string(key) + "' repeats: use a JSON array");
        Value(value, member, false);
        return;
      }
      const bool has_partner = HasPartner(parent, key);
      for (std::size_t i = 0; i < value.Size(); ++i) {
        const std::size_t old = PushIndex(i);
        Value(value.Child(i), member, has_partner);
        Pop(old);
      }
      return;
    }
    if (value.IsArray()) {
      Report(kCodeUnexpectedArray,
             "element '" + std::string(key) + "' is single (max 1): not an array");
      return;
    }
    Value(value, member, false);
  }

  void Value(const Node& value, const Member& member, bool null_ok) {
    if (value.IsNull()) {
      const bool primitive =
          member.type != nullptr && member.type->kind == r4::TypeKind::kPrimitive;
      if (!(null_ok && primitive)) {
        Report(kCodeNullValue,
               "null is only allowed in a primitive array aligned with its '_' partner");
      }
      return;
    }
    if (member.type == nullptr) return;  // metadata without a type: nothing to check
    if (member.is_resource) {
      Resource(value);
      return;
    }
    if (member.type->kind == r4::TypeKind::kPrimitive) {
      const std::string_view json_type = member.type->json_type;
      const bool ok = json_type == "boolean"  ? value.IsBool()
                      : json_type == "number" ? value.IsNumber()
                                              : value.IsString();
      if (!ok) {
        Report(kCodeWrongType, "expected a JSON " + std::string(json_type) + " (FHIR type " +
                                   std::string(member.type->name) + ")");
      }
      return;
    }
    if (!value.IsObject()) {
      Report(kCodeWrongType,
             "expected a JSON object (FHIR type " + std::string(member.type->name) + ")");
      return;
    }
    Object(value, *member.type, false);
  }

  // "_x": an Element (id, extension) or an array of them (null where absent), only for primitives
  // (http://hl7.org/fhir/R4/json.html#primitive).
  void PrimitiveExtension(const Node& parent, std::string_view key, const Node& value,
                          const Member& member) {
    if (member.type == nullptr || member.type->kind != r4::TypeKind::kPrimitive) {
      Report(kCodeBadPrimitiveExtension,
             "'" + std::string(key) +
                 "' is only allowed for primitive elements (json.html#primitive)");
      return;
    }
    static const r4::TypeInfo* const kElement = r4::FindType("Element");
    auto one = [&](const Node& item, bool null_ok) {
      if (item.IsNull()) {
        if (!null_ok) Report(kCodeNullValue, "null '_' partner of a single element");
        return;
      }
      if (!item.IsObject()) {
        Report(kCodeBadPrimitiveExtension,
               "a primitive's '_' partner must be an object with id and/or extension");
        return;
      }
      if (kElement != nullptr) Object(item, *kElement, false);
    };
    if (member.element->IsArray()) {
      if (!value.IsArray()) {
        Report(kCodeExpectedArray, "'" + std::string(key) + "' repeats: use a JSON array");
        return;
      }
      const Node* values = parent.Find(std::string_view(key).substr(1));
      if (values != nullptr && values->IsArray() && values->Size() != value.Size()) {
        Report(kCodeBadPrimitiveExtension, "'" + std::string(key) +
                                               "' must have as many items as '" +
                                               std::string(key.substr(1)) + "'");
      }
      for (std::size_t i = 0; i < value.Size(); ++i) {
        const std::size_t old = PushIndex(i);
        one(value.Child(i), true);
        Pop(old);
      }
      return;
    }
    if (value.IsArray()) {
      Report(kCodeUnexpectedArray, "'" + std::string(key) + "' is single (max 1): not an array");
      return;
    }
    one(value, false);
  }

  static constexpr int kMaxDepth = 512;
  IssueSink& issues_;
  const Location& base_;
  std::string path_;
  bool ok_ = true;
  int depth_ = 0;
};

// ---- writing --------------------------------------------------------------------------------

// Bytes that JSON strings must escape (RFC 8259 §7): controls, '"' and '\\'.
constexpr std::array<bool, 256> kNeedsEscape = [] {
  std::array<bool, 256> table{};
  for (std::size_t c = 0; c < 0x20; ++c) table[c] = true;
  table['"'] = true;
  table['\\'] = true;
  return table;
}();

// Appends to a std::string through a cursor: the string is grown ahead (resize) and cut to the
// written length when the buffer goes away, so writing a byte is one store instead of a
// push_back with its capacity check and length update (the writer emits many 1-3 byte tokens).
class OutBuffer {
 public:
  explicit OutBuffer(std::string& out)
      : out_(out), data_(out.data()), len_(out.size()), cap_(out.size()) {}
  ~OutBuffer() { out_.resize(len_); }
  OutBuffer(const OutBuffer&) = delete;
  OutBuffer& operator=(const OutBuffer&) = delete;

  std::size_t size() const { return len_; }
  void Truncate(std::size_t length) { len_ = length; }  // length <= size()
  void Put(char c) {
    Reserve(1);
    data_[len_++] = c;
  }
  void Put(std::string_view text) {
    Reserve(text.size());
    std::memcpy(data_ + len_, text.data(), text.size());
    len_ += text.size();
  }
  void Fill(std::size_t count, char c) {
    Reserve(count);
    std::memset(data_ + len_, c, count);
    len_ += count;
  }

 private:
  void Reserve(std::size_t n) {
    if (cap_ - len_ < n) Grow(n);
  }
  void Grow(std::size_t n) {
    out_.resize(std::max(cap_ * 2, len_ + n + 256));
    data_ = out_.data();
    cap_ = out_.size();
  }

  std::string& out_;
  char* data_;
  std::size_t len_;
  std::size_t cap_;
};

// Copies runs of plain bytes in one append each; only escaped bytes are handled one by one.
// Most values (codes, ids, dates, names) need no escaping at all: they are skipped 8 bytes at
// a time.
template <class Out>  // OutBuffer, or StringOut for AppendJsonString
void AppendEscaped(Out& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out.Put('"');
  const char* run = text.data();
  const char* const end = text.data() + text.size();
  const char* scan = run;
  while (end - scan >= 8) {
    std::uint64_t word;
    std::memcpy(&word, scan, 8);
    if (JsonWordNeedsEscape(word)) break;
    scan += 8;
  }
  for (const char* p = scan; p != end; ++p) {
    const unsigned char c = static_cast<unsigned char>(*p);
    if (!kNeedsEscape[c]) continue;
    out.Put(std::string_view(run, static_cast<std::size_t>(p - run)));
    switch (c) {
      case '"': out.Put("\\\""); break;
      case '\\': out.Put("\\\\"); break;
      case '\n': out.Put("\\n"); break;
      case '\r': out.Put("\\r"); break;
      case '\t': out.Put("\\t"); break;
      case '\b': out.Put("\\b"); break;
      case '\f': out.Put("\\f"); break;
      default:
        out.Put("\\u00");
        out.Put(kHex[c >> 4]);
        out.Put(kHex[c & 0xF]);
    }
    run = p + 1;
  }
  out.Put(std::string_view(run, static_cast<std::size_t>(end - run)));
  out.Put('"');
}

// AppendEscaped's output straight into a std::string (AppendJsonString's rare escaping path).
struct StringOut {
  std::string& out;
  void Put(char c) { out.push_back(c); }
  void Put(std::string_view text) { out.append(text); }
};

class Writer {
 public:
  Writer(OutBuffer& out, const WriteOptions& options) : out_(out), options_(options) {}

  // Writes `node`; `type` is its metadata when known (canonical ordering), else nullptr.
  // Returns false when, under canonical rules, what was written is empty (null, "", {}, [] or
  // containers of only empty values): the caller then removes it. Deciding after writing keeps
  // the writer linear (no separate emptiness pass at every level).
  bool Value(const Node& node, const r4::TypeInfo* type, int indent) {
    switch (node.kind()) {
      case Node::Kind::kNull: out_.Put("null"); return false;
      case Node::Kind::kBool: out_.Put(node.AsBool() ? "true" : "false"); return true;
      case Node::Kind::kNumber: out_.Put(node.Text()); return true;
      case Node::Kind::kString: AppendEscaped(out_, node.Text()); return !node.Text().empty();
      case Node::Kind::kArray: return Array(node, type, indent);
      case Node::Kind::kObject: return Object(node, type, indent);
    }
    return false;
  }

 private:
  void Newline(int indent) {
    if (!options_.pretty) return;
    out_.Put('\n');
    out_.Fill(static_cast<std::size_t>(indent) * 2, ' ');
  }

  bool Array(const Node& node, const r4::TypeInfo* type, int indent) {
    out_.Put('[');
    bool first = true;
    bool any = false;
    for (const Node& item : node.Items()) {
      if (!first) out_.Put(',');
      first = false;
      Newline(indent + 1);
      const std::size_t mark = out_.size();
      if (Value(item, type, indent + 1)) {
        any = true;
      } else if (options_.canonical) {
        // An empty item becomes null so primitive arrays stay aligned with their "_x" partner.
        out_.Truncate(mark);
        out_.Put("null");
      }
    }
    if (!first) Newline(indent);
    out_.Put(']');
    return any || !options_.canonical;
  }

  bool Object(const Node& node, const r4::TypeInfo* type, int indent) {
    if (options_.canonical && options_.members_in_order) return OrderedObject(node, indent);
    if (options_.canonical) {
      const std::string_view resource_type = node.ResourceType();
      if (!resource_type.empty()) {
        const r4::TypeInfo* t = r4::FindType(resource_type);
        if (t != nullptr && t->kind == r4::TypeKind::kResource) type = t;
      }
    }
    // Member order: canonical sorts by (element index, value before "_x"), unknown last.
    // One reusable buffer per nesting level: no allocation per object after warm-up.
    if (buffers_.size() <= static_cast<std::size_t>(indent)) buffers_.resize(indent + 1);
    std::vector<Entry>& entries = buffers_[static_cast<std::size_t>(indent)];
    entries.clear();
    const std::size_t unknown_rank = std::size_t{1} << 30;
    for (std::size_t i = 0; i < node.Size(); ++i) {
      const std::string_view key = node.Key(i);
      if (!options_.canonical) {
        entries.push_back({i, i, nullptr});
        continue;
      }
      if (std::string_view(key) == "resourceType") {  // length first, no memcmp call
        entries.push_back({0, i, nullptr, true});
        continue;
      }
      Member member;
      if (type != nullptr && Resolve(*type, key, member)) {
        static const r4::TypeInfo* const kElement = r4::FindType("Element");
        const r4::TypeInfo* child = member.underscore ? kElement : member.type;
        if (member.is_resource && !member.underscore) child = nullptr;  // by its resourceType
        entries.push_back(
            {1 + member.element_index * 2 + (member.underscore ? 1 : 0), i, child, true});
      } else {
        entries.push_back({unknown_rank + i, i, nullptr});
      }
    }
    // Objects built by the mapping mostly arrive in canonical order already: then sorting (a
    // stable sort, so equal ranks keep their order) would change nothing.
    const auto by_rank = [](const Entry& a, const Entry& b) { return a.rank < b.rank; };
    if (options_.canonical && !std::is_sorted(entries.begin(), entries.end(), by_rank)) {
      std::stable_sort(entries.begin(), entries.end(), by_rank);
    }
    // Copy: deeper levels reuse their own buffers, but a resize of buffers_ moves this one.
    const std::size_t count = entries.size();
    out_.Put('{');
    bool any = false;
    for (std::size_t k = 0; k < count; ++k) {
      const Entry e = buffers_[static_cast<std::size_t>(indent)][k];
      const std::size_t mark = out_.size();
      if (any) out_.Put(',');
      Newline(indent + 1);
      if (e.known) {  // an element name ("_" + name, "resourceType"): nothing to escape
        out_.Put('"');
        out_.Put(node.Key(e.index));
        out_.Put("\":");
      } else {
        AppendEscaped(out_, node.Key(e.index));
        out_.Put(':');
      }
      if (options_.pretty) out_.Put(' ');
      if (Value(node.Child(e.index), e.type, indent + 1) || !options_.canonical) {
        any = true;
      } else {
        out_.Truncate(mark);  // canonical: no empty members
      }
    }
    if (any) Newline(indent);
    out_.Put('}');
    return any || !options_.canonical;
  }

  // Canonical object whose members the caller vouched for (WriteOptions::members_in_order):
  // written in their order, keys unescaped (element names), empty members dropped.
  bool OrderedObject(const Node& node, int indent) {
    out_.Put('{');
    bool any = false;
    const std::size_t count = node.Size();
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t mark = out_.size();
      if (any) out_.Put(',');
      Newline(indent + 1);
      out_.Put('"');
      out_.Put(node.Key(i));
      out_.Put("\":");
      if (options_.pretty) out_.Put(' ');
      if (Value(node.Child(i), nullptr, indent + 1)) {
        any = true;
      } else {
        out_.Truncate(mark);
      }
    }
    if (any) Newline(indent);
    out_.Put('}');
    return any;
  }

  struct Entry {
    std::size_t rank;
    std::size_t index;
    const r4::TypeInfo* type;
    bool known = false;  // the key is an element name of the metadata
  };

  OutBuffer& out_;
  const WriteOptions& options_;
  std::vector<std::vector<Entry>> buffers_;
};

}  // namespace

Result<Node> ParseJson(std::string_view text, const JsonLimits& limits) {
  ParseFailure failure;
  std::optional<Node> node = Parse(text, limits, failure, nullptr);
  if (!node) return make_error_code(failure.code);
  return std::move(*node);
}

std::optional<Node> ParseJson(std::string_view text, IssueSink& issues, const Location& base,
                              const JsonLimits& limits) {
  ParseFailure failure;
  std::vector<std::string> duplicates;
  std::optional<Node> node = Parse(text, limits, failure, &duplicates);
  if (!node) {
    Location where = base;
    where.byte = static_cast<std::int64_t>(failure.offset);
    if (!failure.path.empty()) where.fhir_path = failure.path;
    issues.Fatal(FailureCode(failure.code), std::move(where), failure.message);
    return std::nullopt;
  }
  for (const std::string& path : duplicates) {
    Location where = base;
    where.fhir_path = path;
    issues.Error(kCodeDuplicateKey, std::move(where),
                 "member appears more than once in its object; the last one was kept");
  }
  return node;
}

bool CheckResource(const Node& resource, IssueSink& issues, const Location& base) {
  Checker checker(issues, base);
  checker.SetPath(base.fhir_path);
  checker.Resource(resource);
  return checker.ok();
}

std::optional<Node> ReadResource(std::string_view text, IssueSink& issues, const Location& base,
                                 const JsonLimits& limits) {
  std::optional<Node> node = ParseJson(text, issues, base, limits);
  if (node) CheckResource(*node, issues, base);
  return node;
}

std::string WriteJson(const Node& node, const WriteOptions& options) {
  std::string out;
  WriteJson(node, out, options);
  return out;
}

void WriteJson(const Node& node, std::string& out, const WriteOptions& options) {
  OutBuffer buffer(out);  // cuts `out` to the written length when it goes out of scope
  Writer writer(buffer, options);
  writer.Value(node, nullptr, 0);
}

void AppendJsonString(std::string& out, std::string_view text) {
  // Values without bytes to escape (nearly all) in one append; the rest through the writer's
  // own escaping so that both spell escapes the same way.
  if (!JsonNeedsEscape(text)) {
    const std::size_t at = out.size();
    out.resize(at + text.size() + 2);
    char* p = out.data() + at;
    p[0] = '"';
    std::memcpy(p + 1, text.data(), text.size());
    p[text.size() + 1] = '"';
    return;
  }
  StringOut sink{out};
  AppendEscaped(sink, text);
}

std::string_view IssueTypeOf(std::string_view code) {
  // http://hl7.org/fhir/R4/valueset-issue-type.html
  auto has = [&](std::string_view part) { return code.find(part) != std::string_view::npos; };
  if (has(".syntax") || has(".encoding") || has(".not_object") || has("unknown_element") ||
      has("wrong_type") || has("_array") || has("primitive_extension") || has("duplicate_key") ||
      has("null_value") || has(".structure"))
    return "structure";
  if (has("too_deep") || has("too_large")) return "too-costly";
  if (has("missing") || has(".min") || has("required")) return "required";
  if (has("binding") || has("code_invalid") || has(".code")) return "code-invalid";
  if (has("unknown_resource_type") || has(".unknown")) return "not-supported";
  if (has("format") || has("regex") || has("bad_") || has(".value") || has("date")) return "value";
  if (has("internal") || has("io_error")) return "exception";
  return "invalid";
}

Node ToOperationOutcome(const std::vector<Issue>& issues) {
  Node outcome = Node::Object();
  outcome.Set("resourceType", Node::String("OperationOutcome"));
  Node& list = outcome.Set("issue", Node::Array());
  for (const Issue& issue : issues) {
    Node entry = Node::Object();
    entry.Set("severity", Node::String(std::string(ToString(issue.severity))));
    entry.Set("code", Node::String(std::string(IssueTypeOf(issue.code))));
    Node coding = Node::Object();
    coding.Set("system", Node::String("urn:kakehashi:issue-code"));
    coding.Set("code", Node::String(std::string(issue.code)));
    Node details = Node::Object();
    details.Set("coding", Node::Array()).Push(std::move(coding));
    entry.Set("details", std::move(details));
    if (!issue.message.empty()) entry.Set("diagnostics", Node::String(issue.message));
    // location: where in the *input* (source, record, field, byte); the FHIRPath goes to
    // expression only.
    Location input = issue.where;
    input.fhir_path.clear();
    const std::string location = input.ToString();
    if (!location.empty()) entry.Set("location", Node::Array()).Push(Node::String(location));
    if (!issue.where.fhir_path.empty()) {
      entry.Set("expression", Node::Array()).Push(Node::String(issue.where.fhir_path));
    }
    list.Push(std::move(entry));
  }
  if (issues.empty()) {
    Node entry = Node::Object();
    entry.Set("severity", Node::String("information"));
    entry.Set("code", Node::String("informational"));
    entry.Set("diagnostics", Node::String("no issues found"));
    list.Push(std::move(entry));
  }
  return outcome;
}

}  // namespace kakehashi::fhir
