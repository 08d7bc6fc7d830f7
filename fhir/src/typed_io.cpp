// Node <-> typed member conversions (see typed_io.hpp), and PrimitiveBase's special members
// (defined here, where Extension is complete).
#include "typed_io.hpp"

#include <charconv>

#include "kakehashi/fhir/errc.hpp"
#include "kakehashi/fhir/json.hpp"

namespace kakehashi::fhir::r4 {

PrimitiveBase::PrimitiveBase() = default;
PrimitiveBase::~PrimitiveBase() = default;
PrimitiveBase::PrimitiveBase(const PrimitiveBase&) = default;
PrimitiveBase::PrimitiveBase(PrimitiveBase&&) noexcept = default;
PrimitiveBase& PrimitiveBase::operator=(const PrimitiveBase&) = default;
PrimitiveBase& PrimitiveBase::operator=(PrimitiveBase&&) noexcept = default;

namespace io {

Node ValueOf(const StringValue& v) {
  return Node::String(v.value.value_or(std::string()));
}
Node ValueOf(const BooleanValue& v) {
  return Node::Bool(v.value.value_or(false));
}
Node ValueOf(const IntegerValue& v) {
  return Node::Number(std::to_string(v.value.value_or(0)));
}
Node ValueOf(const DecimalValue& v) {
  return Node::Number(v.value.value_or("0"));
}

void SetValue(const Node& n, StringValue& v) {
  if (n.IsString()) v.value = n.Text();
}
void SetValue(const Node& n, BooleanValue& v) {
  if (n.IsBool()) v.value = n.AsBool();
}
void SetValue(const Node& n, IntegerValue& v) {
  if (!n.IsNumber()) return;
  std::int64_t parsed = 0;
  const std::string_view text = n.Text();
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed);
  if (ec == std::errc() && end == text.data() + text.size()) v.value = parsed;
}
void SetValue(const Node& n, DecimalValue& v) {
  if (n.IsNumber()) v.value = n.Text();
}

bool HasValue(const StringValue& v) {
  return v.value.has_value() && !v.value->empty();
}
bool HasValue(const BooleanValue& v) {
  return v.value.has_value();
}
bool HasValue(const IntegerValue& v) {
  return v.value.has_value();
}
bool HasValue(const DecimalValue& v) {
  return v.value.has_value() && !v.value->empty();
}

Node ExtrasOf(const PrimitiveBase& v) {
  Node n = Node::Object();
  if (!v.id.empty()) n.Set("id", Node::String(v.id));
  Put(n, "extension", v.extension);
  return n;
}

void SetExtras(const Node& n, PrimitiveBase& v) {
  Get(n, "id", v.id);
  Get(n, "extension", v.extension);
}

std::string Underscore(std::string_view name) {
  std::string out;
  out.reserve(name.size() + 1);
  out += '_';
  out += name;
  return out;
}

void Put(Node& node, std::string_view name, const std::string& v) {
  if (!v.empty()) node.Set(std::string(name), Node::String(v));
}
void Get(const Node& node, std::string_view name, std::string& v) {
  if (const Node* value = node.Find(name); value && value->IsString()) v = value->Text();
}

void Put(Node& node, std::string_view name, const Node& v) {
  if (!v.IsNull()) node.Set(std::string(name), v);
}
void Get(const Node& node, std::string_view name, Node& v) {
  if (const Node* value = node.Find(name)) v = *value;
}
void Put(Node& node, std::string_view name, const std::vector<Node>& v) {
  if (v.empty()) return;
  Node items = Node::Array();
  for (const Node& item : v) items.Push(item);
  node.Set(std::string(name), std::move(items));
}
void Get(const Node& node, std::string_view name, std::vector<Node>& v) {
  v.clear();
  if (const Node* items = node.Find(name); items && items->IsArray()) {
    v.assign(items->Items().begin(), items->Items().end());
  }
}

boost::system::error_code CheckForRead(const Node& node, std::string_view resource_type,
                                       IssueSink& issues) {
  if (node.ResourceType() != resource_type) {
    issues.Error("fhir.typed.wrong_resource_type", {},
                 "expected a " + std::string(resource_type) + " resource");
    return make_error_code(errc::kNotResource);
  }
  if (!CheckResource(node, issues)) return make_error_code(errc::kInvalid);
  return {};
}

}  // namespace io
}  // namespace kakehashi::fhir::r4
