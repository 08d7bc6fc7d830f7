// The base R4 validator: one walk over the element tree, driven by the generated metadata
// (kakehashi/fhir/r4/meta.hpp). Rules cite the R4 specification:
//   json.html            JSON representation (arrays, nulls, primitive extensions "_x")
//   datatypes.html       primitive formats
//   element.html ele-1, extensibility.html ext-1, domainresource.html dom-2..dom-5,
//   bundle.html bdl-7, references.html (ref-1, relative and urn: references in Bundles).
#include "kakehashi/conformance/validator.hpp"

#include "kakehashi/conformance/primitive_format.hpp"
#include "kakehashi/fhir/json.hpp"
#include "kakehashi/fhir/r4/meta.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace kakehashi::conformance {
namespace {

using fhir::Node;
using fhir::r4::BindingStrength;
using fhir::r4::ElementInfo;
using fhir::r4::FindType;
using fhir::r4::TypeInfo;
using fhir::r4::TypeKind;
using fhir::r4::TypeRef;

constexpr std::string_view kSdBase = "http://hl7.org/fhir/StructureDefinition/";
constexpr int kMaxDepth = 200;

// Stable codes (docs/conformance.md). Issue::code must point at static storage.
constexpr std::string_view kCodeResourceType = "conformance.resource_type";
constexpr std::string_view kCodeUnknown = "conformance.unknown_element";
constexpr std::string_view kCodeMin = "conformance.cardinality.min";
constexpr std::string_view kCodeMax = "conformance.cardinality.max";
constexpr std::string_view kCodeArrayExpected = "conformance.array.expected";
constexpr std::string_view kCodeArrayUnexpected = "conformance.array.unexpected";
constexpr std::string_view kCodeType = "conformance.type";
constexpr std::string_view kCodeChoice = "conformance.choice.multiple";
constexpr std::string_view kCodeEmpty = "conformance.empty";
constexpr std::string_view kCodePrimitiveExtension = "conformance.primitive_extension";
constexpr std::string_view kCodeBinding = "conformance.binding.required";
constexpr std::string_view kCodeUnresolved = "conformance.reference.unresolved";
constexpr std::string_view kCodeTarget = "conformance.reference.target";
constexpr std::string_view kCodeRefFormat = "conformance.reference.format";
constexpr std::string_view kCodeDepth = "conformance.depth";
constexpr std::string_view kCodeEle1 = "conformance.invariant.ele-1";
constexpr std::string_view kCodeExt1 = "conformance.invariant.ext-1";
constexpr std::string_view kCodeDom2 = "conformance.invariant.dom-2";
constexpr std::string_view kCodeDom3 = "conformance.invariant.dom-3";
constexpr std::string_view kCodeDom4 = "conformance.invariant.dom-4";
constexpr std::string_view kCodeDom5 = "conformance.invariant.dom-5";
constexpr std::string_view kCodeBdl1 = "conformance.invariant.bdl-1";
constexpr std::string_view kCodeBdl2 = "conformance.invariant.bdl-2";
constexpr std::string_view kCodeBdl3 = "conformance.invariant.bdl-3";
constexpr std::string_view kCodeBdl4 = "conformance.invariant.bdl-4";
constexpr std::string_view kCodeBdl5 = "conformance.invariant.bdl-5";
constexpr std::string_view kCodeBdl7 = "conformance.invariant.bdl-7";
constexpr std::string_view kCodeBdl8 = "conformance.invariant.bdl-8";
constexpr std::string_view kCodeBdl9 = "conformance.invariant.bdl-9";
constexpr std::string_view kCodeBdl10 = "conformance.invariant.bdl-10";
constexpr std::string_view kCodeBdl11 = "conformance.invariant.bdl-11";
constexpr std::string_view kCodeBdl12 = "conformance.invariant.bdl-12";

// conformance.format.<primitive> for every R4 primitive; "conformance.format" for others.
std::string_view FormatCode(std::string_view type) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 20> kCodes{{
      {"base64Binary", "conformance.format.base64Binary"},
      {"boolean", "conformance.format.boolean"},
      {"canonical", "conformance.format.canonical"},
      {"code", "conformance.format.code"},
      {"date", "conformance.format.date"},
      {"dateTime", "conformance.format.dateTime"},
      {"decimal", "conformance.format.decimal"},
      {"id", "conformance.format.id"},
      {"instant", "conformance.format.instant"},
      {"integer", "conformance.format.integer"},
      {"markdown", "conformance.format.markdown"},
      {"oid", "conformance.format.oid"},
      {"positiveInt", "conformance.format.positiveInt"},
      {"string", "conformance.format.string"},
      {"time", "conformance.format.time"},
      {"unsignedInt", "conformance.format.unsignedInt"},
      {"uri", "conformance.format.uri"},
      {"url", "conformance.format.url"},
      {"uuid", "conformance.format.uuid"},
      {"xhtml", "conformance.format.xhtml"},
  }};
  for (const auto& [name, code] : kCodes) {
    if (name == type) return code;
  }
  return "conformance.format";
}

// What the walker found for one element of an object.
struct Seen {
  const Node* value = nullptr;      // "name": …
  const Node* extension = nullptr;  // "_name": …
  std::string_view json_name;       // "valueQuantity" for choices
  std::string_view choice_type;     // "Quantity"
  // The value type (ElementMatch::type): choice type, backbone type, or the declared type
  // with FHIRPath System.* codes read as the FHIR primitive.
  const TypeInfo* type = nullptr;
};

// Hashes std::string and std::string_view alike, so the maps below are searched with the views
// Node::Text() gives without building a string.
struct ViewHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view text) const {
    return std::hash<std::string_view>{}(text);
  }
};
using ViewMap = std::unordered_map<std::string, std::string, ViewHash, std::equal_to<>>;

// Per resource that can hold contained resources (dom-3, ref-1).
struct ResourceScope {
  const Node* contained = nullptr;
  ViewMap contained_types;                        // id -> resourceType
  std::set<std::string, std::less<>> referenced;  // "#id" targets seen
  bool references_container = false;              // a "#" reference
};

// Per Bundle: what its entries are, for urn: and relative references (references.html#bundle).
struct BundleScope {
  ViewMap by_full_url;  // fullUrl -> resourceType
};

// Forwards to the caller's sink and remembers whether an error was reported.
class CountingSink final : public IssueSink {
 public:
  explicit CountingSink(IssueSink& next) : next_(next) {}
  void Report(Issue issue) override {
    if (issue.severity == Severity::kError || issue.severity == Severity::kFatal) ++errors_;
    next_.Report(std::move(issue));
  }
  bool StopRequested() const override { return next_.StopRequested(); }
  std::size_t Errors() const { return errors_; }

 private:
  IssueSink& next_;
  std::size_t errors_ = 0;
};

// Whether the metadata types Resource.id of `type` as the primitive id (then the generic
// primitive check covers it).
bool IdTypedById(const TypeInfo& type) {
  // MatchElement reads the spec's FHIRPath System.* codes as FHIR primitives (meta.hpp).
  const fhir::r4::ElementMatch id = type.MatchElement("id");
  return id.type != nullptr && id.type->name == "id";
}

// Types the walker treats specially, compared by address: every TypeInfo it sees comes from
// the generated table (FindType / ElementMatch), where names are unique.
struct KnownTypes {
  const TypeInfo* extension = FindType("Extension");
  const TypeInfo* reference = FindType("Reference");
  const TypeInfo* coding = FindType("Coding");
  const TypeInfo* codeable_concept = FindType("CodeableConcept");
};
const KnownTypes& Known() {
  static const KnownTypes kKnown;
  return kKnown;
}

// What the walker needs to know about a type, worked out once per TypeInfo of the generated
// table instead of per value or per object:
//   - the indexes of its required elements (min > 0), so that an object is checked in the
//     time of its members, not of its type's element count (Observation has 29 elements,
//     an object typically 2-5 members);
//   - for primitives, MatchesPrimitive's dispatch on the type name (a chain of up to 17 string
//     compares per value otherwise), the JSON kind its values take and what Primitive() does
//     with them beyond the format (uri-like: "#id" dom-3 references; code: required bindings).
enum class JsonKind : unsigned char { kString, kBoolean, kNumber };

struct TypeFacts {
  using Check = bool (*)(std::string_view);
  std::vector<std::uint32_t> required;  // element indexes with min > 0, ascending
  // Per element, for MatchInOrder: the length of its JSON name when TypeInfo::MatchElement
  // answers exactly this element for that name (not a choice, no earlier element of the same
  // name), else 0; and the value type MatchElement resolves for it.
  std::vector<std::uint8_t> name_length;
  std::vector<const TypeInfo*> value_type;
  Check check = nullptr;  // nullptr: MatchesPrimitive with the spec regex
  JsonKind json_kind = JsonKind::kString;
  bool uri_like = false;  // uri, canonical, url
  bool is_code = false;
};

class FactTable {
 public:
  FactTable() {
    const auto all = fhir::r4::AllTypes();
    facts_.resize(all.size());
    for (std::size_t i = 0; i < all.size(); ++i) Fill(all[i], facts_[i]);
  }

  // nullptr for TypeInfos outside the generated table (built by hand): see Fill.
  const TypeFacts* Find(const TypeInfo& type) const {
    const auto all = fhir::r4::AllTypes();
    if (std::less_equal<const TypeInfo*>()(all.data(), &type) &&
        std::less<const TypeInfo*>()(&type, all.data() + all.size())) {
      return &facts_[static_cast<std::size_t>(&type - all.data())];
    }
    return nullptr;
  }

  static void Fill(const TypeInfo& type, TypeFacts& facts) {
    facts.required.clear();
    facts.name_length.assign(type.elements.size(), 0);
    facts.value_type.assign(type.elements.size(), nullptr);
    for (std::size_t e = 0; e < type.elements.size(); ++e) {
      const ElementInfo& element = type.elements[e];
      if (element.min > 0) facts.required.push_back(static_cast<std::uint32_t>(e));
      if (element.is_choice || element.name.empty() || element.name.size() > 255) continue;
      const fhir::r4::ElementMatch match = type.MatchElement(element.name);
      if (match.element != &element) continue;
      facts.name_length[e] = static_cast<std::uint8_t>(element.name.size());
      facts.value_type[e] = match.type;
    }
    if (type.kind != TypeKind::kPrimitive) return;
    facts.check = Pick(type.name);
    const std::string_view json_type = type.json_type.empty() ? "string" : type.json_type;
    facts.json_kind = json_type == "boolean"  ? JsonKind::kBoolean
                      : json_type == "number" ? JsonKind::kNumber
                                              : JsonKind::kString;
    facts.uri_like = type.name == "uri" || type.name == "canonical" || type.name == "url";
    facts.is_code = type.name == "code";
  }

 private:
  // The functions MatchesPrimitive calls for `type`; nullptr where it uses the spec regex.
  static TypeFacts::Check Pick(std::string_view type) {
    if (type == "string" || type == "markdown") return IsFhirString;
    if (type == "code") return IsCode;
    if (type == "dateTime") return IsDateTime;
    if (type == "uri" || type == "url" || type == "canonical") return IsUri;
    if (type == "date") return IsDate;
    if (type == "id") return IsId;
    if (type == "decimal") return IsDecimal;
    if (type == "instant") return IsInstant;
    if (type == "integer") return IsInteger;
    if (type == "positiveInt") return IsPositiveInt;
    if (type == "unsignedInt") return IsUnsignedInt;
    if (type == "time") return IsTime;
    if (type == "oid") return IsOid;
    if (type == "uuid") return IsUuid;
    if (type == "base64Binary") return IsBase64Binary;
    if (type == "boolean") return [](std::string_view t) { return t == "true" || t == "false"; };
    if (type == "xhtml") return [](std::string_view t) { return !t.empty(); };
    return nullptr;
  }

  std::vector<TypeFacts> facts_;  // by index in AllTypes()
};

const FactTable& Facts() {
  static const FactTable kTable;
  return kTable;
}

// The bound value set of every element with a required binding, resolved once (FindValueSet is
// a binary search with string compares; it ran for every bound code, Coding and concept).
class BindingTable {
 public:
  BindingTable() {
    for (const TypeInfo& type : fhir::r4::AllTypes()) {
      for (const ElementInfo& element : type.elements) {
        if (element.binding == BindingStrength::kRequired) {
          by_element_.emplace(&element, fhir::r4::FindValueSet(element.value_set));
        }
      }
    }
  }
  const fhir::r4::ValueSetInfo* Find(const ElementInfo& element) const {
    const auto it = by_element_.find(&element);
    return it != by_element_.end() ? it->second : fhir::r4::FindValueSet(element.value_set);
  }

 private:
  std::unordered_map<const ElementInfo*, const fhir::r4::ValueSetInfo*> by_element_;
};

const BindingTable& Bindings() {
  static const BindingTable kTable;
  return kTable;
}

bool TargetAllows(std::span<const TypeRef> types, std::string_view type_code,
                  std::string_view resource_type) {
  for (const TypeRef& ref : types) {
    if (ref.code != type_code) continue;
    if (ref.target_profiles.empty()) return true;
    for (std::string_view profile : ref.target_profiles) {
      if (profile.substr(0, kSdBase.size()) != kSdBase) return true;  // a profile we cannot read
      const std::string_view target = profile.substr(kSdBase.size());
      if (target == resource_type || target == "Resource" || target == "DomainResource") {
        return true;
      }
    }
    return false;
  }
  return true;
}

}  // namespace

struct Validator::Impl {
  ValidatorOptions options;
  std::vector<std::unique_ptr<Checker>> checkers;
};

namespace {

class Walker {
 public:
  // `out`: when not null, the walk also appends the resource's canonical JSON there (see
  // Validator::Validate(..., json, written)); the bytes are usable only if Written().
  Walker(const Validator::Impl& impl, IssueSink& sink, const Location& base,
         std::string* out = nullptr)
      : out_(out),
        out_len_(out != nullptr ? out->size() : 0),
        impl_(impl),
        sink_(sink),
        base_(base),
        own_(ThreadScratch().in_use ? std::make_unique<Scratch>() : nullptr),
        scratch_(own_ != nullptr ? *own_ : ThreadScratch()),
        path_(scratch_.path),
        levels_(scratch_.levels),
        facts_(Facts()),
        known_(Known()) {
    scratch_.in_use = true;
    if (levels_.empty()) levels_.resize(kMaxDepth + 1);  // never resized again: stable slots
    if (scratch_.dirty) {  // an earlier walk on this thread ended by an exception
      for (Level& level : levels_) {
        std::fill(level.seen.begin(), level.seen.end(), Seen{});
        level.touched.clear();
      }
    }
    scratch_.dirty = true;
  }
  ~Walker() { scratch_.in_use = false; }
  Walker(const Walker&) = delete;
  Walker& operator=(const Walker&) = delete;

  void Root(const Node& resource) {
    if (!resource.IsObject()) {
      Report(Severity::kError, kCodeResourceType, "a resource must be a JSON object");
      return;
    }
    const std::string_view root = resource.ResourceType();
    PushRaw(root.empty() ? std::string_view("Resource") : root);
    Resource(resource, /*contained=*/false);
    scratch_.dirty = false;  // every level's slots are back to empty
  }

  // See Validator::Validate(..., members_in_order).
  bool InOrder() const { return in_order_; }
  // Whether what was appended to `out` is what fhir::WriteJson writes for the resource, provided
  // no error was reported: every object walked had its members in canonical order (InOrder), so
  // visiting elements in specification order visited the members in order, and nothing was met
  // that the walk does not write itself (primitive extensions "_x", members of no known type).
  bool Written() const { return out_ != nullptr && in_order_ && writable_; }
  // Cuts `out` to what was written (it is grown ahead while writing).
  void FinishOutput() {
    if (out_ != nullptr) out_->resize(out_len_);
  }

 private:
  // --- paths and reporting -------------------------------------------------------------------

  struct Segment {
    std::string_view name;  // member name, or raw text (root type, "[x]")
    std::size_t index;      // array index, or kMember / kRaw
  };
  static constexpr std::size_t kMember = static_cast<std::size_t>(-1);
  static constexpr std::size_t kRaw = static_cast<std::size_t>(-2);

  // Buffers of a walk, reused by the walks of one thread (Validate runs once per resource on
  // the conversion path, so fresh buffers would cost allocations per resource); a walk nested in
  // another on the same thread (a Checker validating from inside) gets its own.
  // Per nesting level: the Seen slots of the object being walked, one per element of its type
  // (no allocation per object once warm), and the indexes of the slots its members filled.
  // Between objects every slot is empty: an object resets only the slots it touched, so its
  // cost follows its members, not its type's element count.
  struct Level {
    std::vector<Seen> seen;
    std::vector<std::uint32_t> touched;
  };
  struct Scratch {
    std::vector<Segment> path;
    // One per possible depth, allocated once: deeper levels never move the outer ones.
    std::vector<Level> levels;
    bool in_use = false;
    bool dirty = false;  // a walk did not finish: slots may be left filled
  };
  static Scratch& ThreadScratch() {
    static thread_local Scratch scratch;
    return scratch;
  }

  // The location is kept as a stack of segments (views of member names that outlive the walk)
  // and rendered only when an issue is reported or a Checker asks: most resources report
  // nothing, so building "Patient.name[0].given[1]" for every element would be wasted work.
  // path_ is used as a stack of depth_of_path_ segments; its storage only grows.
  std::size_t PushMember(std::string_view name) { return Push({name, kMember}); }
  std::size_t PushIndex(std::size_t index) { return Push({{}, index}); }
  void PushRaw(std::string_view text) { Push({text, kRaw}); }
  [[gnu::always_inline]] std::size_t Push(Segment segment) {
    const std::size_t old = path_depth_;
    if (path_depth_ == path_.size()) [[unlikely]]
      GrowPath();
    path_[path_depth_++] = segment;
    return old;
  }
  void GrowPath() { path_.resize(path_.size() * 2 + 16); }
  void Pop(std::size_t old) { path_depth_ = old; }

  std::string RenderPath() const {
    std::string out;
    for (std::size_t i = 0; i < path_depth_; ++i) {
      const Segment& segment = path_[i];
      if (segment.index == kMember) {
        out += '.';
        out += segment.name;
      } else if (segment.index == kRaw) {
        out += segment.name;
      } else {
        char buffer[24];
        auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, segment.index);
        (void)ec;
        out += '[';
        out.append(buffer, end);
        out += ']';
      }
    }
    return out;
  }

  void Report(Severity severity, std::string_view code, std::string message) {
    Location where = base_;
    where.fhir_path = RenderPath();
    sink_.Report({severity, code, std::move(where), std::move(message)});
  }
  void Error(std::string_view code, std::string message) {
    Report(Severity::kError, code, std::move(message));
  }

  // --- writing (out_) ------------------------------------------------------------------------
  // Through a cursor: `out_` is grown ahead (resize) and cut to out_len_ by FinishOutput, so a
  // token costs a few stores instead of std::string::append calls.

  [[gnu::always_inline]] char* Room(std::size_t n) {
    if (out_->size() - out_len_ < n) [[unlikely]]
      Grow(n);
    return out_->data() + out_len_;
  }
  [[gnu::noinline]] void Grow(std::size_t n) {
    out_->resize(std::max(out_->size() * 2, out_len_ + n + 256));
  }
  // memcpy without a call for the short names and values that dominate.
  static char* Copy(char* to, std::string_view text) {
    const char* from = text.data();
    const std::size_t n = text.size();
    if (n >= 8 && n <= 16) {
      std::uint64_t a;
      std::uint64_t b;
      std::memcpy(&a, from, 8);
      std::memcpy(&b, from + n - 8, 8);
      std::memcpy(to, &a, 8);
      std::memcpy(to + n - 8, &b, 8);
    } else if (n >= 4 && n < 8) {
      std::uint32_t a;
      std::uint32_t b;
      std::memcpy(&a, from, 4);
      std::memcpy(&b, from + n - 4, 4);
      std::memcpy(to, &a, 4);
      std::memcpy(to + n - 4, &b, 4);
    } else if (n > 0 && n < 4) {
      to[0] = from[0];
      to[n / 2] = from[n / 2];
      to[n - 1] = from[n - 1];
    } else if (n > 16) {
      std::memcpy(to, from, n);
    }
    return to + n;
  }
  void Put(char c) {
    *Room(1) = c;
    ++out_len_;
  }
  void Put(std::string_view text) {
    Copy(Room(text.size()), text);
    out_len_ += text.size();
  }
  // ,"name":   (element names need no escaping)
  void PutKey(std::string_view name, bool comma) {
    char* const start = Room(name.size() + 4);
    char* p = start;
    if (comma) *p++ = ',';
    *p++ = '"';
    p = Copy(p, name);
    *p++ = '"';
    *p++ = ':';
    out_len_ += static_cast<std::size_t>(p - start);
  }
  void PutString(std::string_view text) {
    if (fhir::JsonNeedsEscape(text)) [[unlikely]] {
      escaped_.clear();
      fhir::AppendJsonString(escaped_, text);  // WriteJson's escaping
      Put(escaped_);
      return;
    }
    char* p = Room(text.size() + 2);
    *p++ = '"';
    p = Copy(p, text);
    *p = '"';
    out_len_ += text.size() + 2;
  }

  // --- resources -----------------------------------------------------------------------------

  // Validates a resource object at path_. `contained`: inside another resource's "contained".
  void Resource(const Node& resource, bool contained) {
    const std::string_view resource_type = resource.ResourceType();
    const Node* rt = resource.Find("resourceType");
    if (rt == nullptr || !rt->IsString()) {
      Error(kCodeResourceType, "resourceType is missing or not a string");
      return;
    }
    const TypeInfo* type = FindType(resource_type);
    if (type == nullptr || type->kind != TypeKind::kResource || type->is_abstract) {
      Error(kCodeResourceType, "resourceType is not a concrete FHIR R4 resource type");
      return;
    }
    // Resource.id is typed System.String in the R4 snapshot; its syntax is that of id
    // (resource.html#id). Checked here unless the metadata already types it as id.
    if (const Node* id = resource.Find("id"); id != nullptr && id->IsString() &&
                                              !id->Text().empty() && !IdTypedById(*type) &&
                                              !IsId(id->Text())) {
      const std::size_t old = PushMember("id");
      Error(FormatCode("id"), "Resource.id must be 1-64 characters of [A-Za-z0-9-.]");
      Pop(old);
    }

    ResourceScope own_scope;
    ResourceScope* saved_scope = scope_;
    if (contained) {
      ContainedRules(resource);
    } else {
      own_scope.contained = resource.Find("contained");
      if (own_scope.contained != nullptr && own_scope.contained->IsArray()) {
        for (const Node& c : own_scope.contained->Items()) {
          const Node* cid = c.IsObject() ? c.Find("id") : nullptr;
          if (cid != nullptr && cid->IsString()) {
            own_scope.contained_types.emplace(cid->Text(), std::string(c.ResourceType()));
          }
        }
      }
      scope_ = &own_scope;
    }

    BundleScope bundle_scope;
    const bool is_bundle = resource_type == "Bundle";
    if (is_bundle) {
      IndexBundle(resource, bundle_scope);
      BundleRules(resource);
      bundles_.push_back(&bundle_scope);
    }

    Object(resource, *type, /*is_resource=*/true);

    if (is_bundle) bundles_.pop_back();
    if (!contained) {
      Dom3(own_scope);
      scope_ = saved_scope;
    }

    if (!impl_.checkers.empty()) {
      const std::string path = RenderPath();
      ResourceContext context{resource, path, base_, contained};
      for (const auto& checker : impl_.checkers) checker->Check(context, sink_);
    }
  }

  // dom-2, dom-4, dom-5 (domainresource.html#invs): rules for a contained resource.
  void ContainedRules(const Node& resource) {
    if (resource.Find("contained") != nullptr) {
      const std::size_t old = PushMember("contained");
      Error(kCodeDom2, "a contained resource must not contain resources (dom-2)");
      Pop(old);
    }
    if (const Node* meta = resource.Find("meta"); meta != nullptr && meta->IsObject()) {
      if (meta->Find("versionId") != nullptr || meta->Find("lastUpdated") != nullptr) {
        const std::size_t old = PushMember("meta");
        Error(kCodeDom4,
              "a contained resource must not have meta.versionId or meta.lastUpdated (dom-4)");
        Pop(old);
      }
      if (meta->Find("security") != nullptr) {
        const std::size_t old = PushMember("meta");
        Error(kCodeDom5, "a contained resource must not have a security label (dom-5)");
        Pop(old);
      }
    }
  }

  // dom-3: every contained resource is referenced from elsewhere in the resource (or the
  // container is referenced with "#").
  void Dom3(const ResourceScope& scope) {
    if (scope.contained == nullptr || !scope.contained->IsArray()) return;
    if (scope.references_container) return;
    const auto& items = scope.contained->Items();
    for (std::size_t i = 0; i < items.size(); ++i) {
      const Node* cid = items[i].IsObject() ? items[i].Find("id") : nullptr;
      const bool ok = cid != nullptr && cid->IsString() && scope.referenced.count(cid->Text()) > 0;
      if (ok) continue;
      const std::size_t old = PushMember("contained");
      PushIndex(i);
      Error(kCodeDom3, cid == nullptr
                           ? "a contained resource needs an id and a local reference to it (dom-3)"
                           : "a contained resource is not referenced from its container (dom-3)");
      Pop(old);
    }
  }

  // The Bundle invariants of bundle.html#invs that need no FHIRPath engine.
  void BundleRules(const Node& bundle) {
    const Node* type_node = bundle.Find("type");
    const std::string_view type =
        type_node != nullptr && type_node->IsString() ? std::string_view(type_node->Text()) : "";
    const bool search_or_history = type == "searchset" || type == "history";
    if (bundle.Find("total") != nullptr && !search_or_history) {
      const std::size_t old = PushMember("total");
      Error(kCodeBdl1, "total is only allowed in a searchset or history Bundle (bdl-1)");
      Pop(old);
    }
    const bool needs_request = type == "batch" || type == "transaction" || type == "history";
    const bool needs_response =
        type == "batch-response" || type == "transaction-response" || type == "history";
    const Node* entries = bundle.Find("entry");
    const std::size_t count = entries != nullptr && entries->IsArray() ? entries->Size() : 0;
    for (std::size_t i = 0; i < count; ++i) {
      const Node& entry = entries->Items()[i];
      if (!entry.IsObject()) continue;
      const std::size_t old = PushMember("entry");
      PushIndex(i);
      if (entry.Find("search") != nullptr && type != "searchset") {
        Error(kCodeBdl2, "entry.search is only allowed in a searchset Bundle (bdl-2)");
      }
      if (!type.empty() && (entry.Find("request") != nullptr) != needs_request) {
        Error(kCodeBdl3,
              needs_request
                  ? "entry.request is required in a batch, transaction or history Bundle (bdl-3)"
                  : "entry.request is only allowed in a batch, transaction or history Bundle "
                    "(bdl-3)");
      }
      if (!type.empty() && (entry.Find("response") != nullptr) != needs_response) {
        Error(kCodeBdl4, needs_response ? "entry.response is required in a batch-response, "
                                          "transaction-response or history Bundle (bdl-4)"
                                        : "entry.response is only allowed in a batch-response, "
                                          "transaction-response or history Bundle (bdl-4)");
      }
      if (entry.Find("resource") == nullptr && entry.Find("request") == nullptr &&
          entry.Find("response") == nullptr) {
        Error(kCodeBdl5, "an entry needs a resource, a request or a response (bdl-5)");
      }
      if (const Node* full_url = entry.Find("fullUrl");
          full_url != nullptr && full_url->IsString() &&
          full_url->Text().find("/_history/") != std::string::npos) {
        PushMember("fullUrl");
        Error(kCodeBdl8, "fullUrl must not be a version-specific reference (bdl-8)");
      }
      Pop(old);
    }
    const Node* first = count > 0 && entries->Items()[0].IsObject()
                            ? entries->Items()[0].Find("resource")
                            : nullptr;
    const std::string_view first_type =
        first != nullptr && first->IsObject() ? first->ResourceType() : "";
    if (type == "document") {
      const Node* identifier = bundle.Find("identifier");
      if (identifier == nullptr || !identifier->IsObject() ||
          identifier->Find("system") == nullptr || identifier->Find("value") == nullptr) {
        Error(kCodeBdl9, "a document Bundle needs an identifier with system and value (bdl-9)");
      }
      if (bundle.Find("timestamp") == nullptr) {
        Error(kCodeBdl10, "a document Bundle needs a timestamp (bdl-10)");
      }
      if (first_type != "Composition") {
        Error(kCodeBdl11, "the first entry of a document Bundle must be a Composition (bdl-11)");
      }
    }
    if (type == "message" && first_type != "MessageHeader") {
      Error(kCodeBdl12, "the first entry of a message Bundle must be a MessageHeader (bdl-12)");
    }
  }

  void IndexBundle(const Node& bundle, BundleScope& scope) {
    const Node* entries = bundle.Find("entry");
    if (entries == nullptr || !entries->IsArray()) return;
    std::set<std::string, std::less<>> keys;
    const auto& items = entries->Items();
    for (std::size_t i = 0; i < items.size(); ++i) {
      const Node& entry = items[i];
      if (!entry.IsObject()) continue;
      const Node* resource = entry.Find("resource");
      std::string type;
      std::string version;
      if (resource != nullptr && resource->IsObject()) {
        type = std::string(resource->ResourceType());
        if (const Node* meta = resource->Find("meta"); meta != nullptr && meta->IsObject()) {
          if (const Node* v = meta->Find("versionId"); v != nullptr) version = v->Text();
        }
      }
      const Node* full_url = entry.Find("fullUrl");
      if (full_url == nullptr || !full_url->IsString()) continue;
      scope.by_full_url.emplace(full_url->Text(), type);
      // bdl-7: FullUrl must be unique in a bundle, or else entries with the same fullUrl must
      // have different meta.versionId.
      if (!keys.insert(std::string(full_url->Text()) + '|' + version).second) {
        const std::size_t old = PushMember("entry");
        PushIndex(i);
        PushMember("fullUrl");
        Error(kCodeBdl7, "fullUrl is used by an earlier entry with the same versionId (bdl-7)");
        Pop(old);
      }
    }
  }

  // --- objects and elements ------------------------------------------------------------------

  // Validates the members of an object of type `type` at path_.
  void Object(const Node& object, const TypeInfo& type, bool is_resource) {
    if (++depth_ > kMaxDepth) {
      if (!depth_reported_) Error(kCodeDepth, "elements are nested too deeply to validate");
      depth_reported_ = true;
      --depth_;
      return;
    }
    if (object.Size() == 0) {
      Error(kCodeEmpty, "an element must not be an empty object (ele-1)");
      --depth_;
      return;
    }
    const auto elements = type.elements;
    const TypeFacts* facts = facts_.Find(type);
    std::optional<TypeFacts> own_facts;  // a TypeInfo built by hand (not in the generated table)
    if (facts == nullptr) [[unlikely]] {
      FactTable::Fill(type, own_facts.emplace());
      facts = &*own_facts;
    }
    Level& level = levels_[static_cast<std::size_t>(depth_ - 1)];
    if (level.seen.size() < elements.size()) level.seen.resize(elements.size());
    std::vector<Seen>& seen = level.seen;
    std::vector<std::uint32_t>& touched = level.touched;
    bool has_child = false;
    // Rank of a member in fhir::WriteJson's canonical order: resourceType 0, then
    // 1 + 2 * element index (+1 for the "_x" partner).
    std::size_t last_rank = 0;
    std::size_t next_element = 0;  // where the next member is looked for first
    const Node* resource_type = nullptr;
    bool touched_sorted = true;
    for (std::size_t i = 0; i < object.Size(); ++i) {
      const std::string_view key = object.Key(i);
      if (is_resource && std::string_view(key) == "resourceType") {  // length first
        if (i != 0) in_order_ = false;
        resource_type = &object.Child(i);
        continue;
      }
      const bool is_extension_key = key.size() > 1 && key[0] == '_';
      const std::string_view name =
          is_extension_key ? std::string_view(key).substr(1) : std::string_view(key);
      const fhir::r4::ElementMatch match = MatchInOrder(type, *facts, next_element, name);
      const ElementInfo* element = match.element;
      const std::string_view choice_type = match.choice_type;
      if (element == nullptr || (element->is_choice && choice_type.empty())) {
        const std::size_t old = PushMember(key);
        Error(kCodeUnknown,
              "'" + std::string(key) + "' is not an element of " + std::string(type.name));
        Pop(old);
        continue;
      }
      const std::size_t element_index = static_cast<std::size_t>(element - elements.data());
      const std::size_t rank = 1 + element_index * 2 + (is_extension_key ? 1 : 0);
      if (rank < last_rank) {
        in_order_ = false;
        touched_sorted = false;
      }
      last_rank = rank;
      next_element = element_index + 1;
      Seen& s = seen[element_index];
      if (element->is_choice && !s.json_name.empty() && s.json_name != name) {
        const std::size_t old = PushMember(key);
        Error(kCodeChoice, "only one type of " + std::string(element->name) +
                               "[x] may be present (choice element)");
        Pop(old);
        continue;
      }
      if (s.value == nullptr && s.extension == nullptr) {
        touched.push_back(static_cast<std::uint32_t>(element_index));
      } else if ((is_extension_key ? s.extension : s.value) != nullptr) {
        writable_ = false;  // a repeated key: the writer would write both
      }
      s.json_name = name;
      s.choice_type = choice_type;
      s.type = match.type;
      if (is_extension_key) {
        s.extension = &object.Child(i);
      } else {
        s.value = &object.Child(i);
      }
      if (std::string_view(key) != "id") has_child = true;
    }
    if (!is_resource && !has_child) {
      Error(kCodeEle1, "an element must have a value or children other than id (ele-1)");
    }
    // Elements in specification order, as a walk over every element would visit them: the
    // present ones merged with the required ones (an absent optional element has nothing to
    // check). Members in canonical order touched their slots in ascending order already.
    if (!touched_sorted) std::sort(touched.begin(), touched.end());
    const std::vector<std::uint32_t>& required = facts->required;
    // Writing (out_): fhir::WriteJson's canonical order is resourceType, then the members by
    // element; a valid object has no empty members for it to drop.
    bool first = true;
    if (out_ != nullptr) {
      Put('{');
      if (resource_type != nullptr) {
        Put("\"resourceType\":");
        PutString(resource_type->Text());
        first = false;
      }
    }
    std::size_t t = 0;
    std::size_t r = 0;
    while (t < touched.size() || r < required.size()) {
      std::uint32_t e;
      if (r == required.size() || (t < touched.size() && touched[t] <= required[r])) {
        e = touched[t++];
        if (r < required.size() && required[r] == e) ++r;
      } else {
        e = required[r++];
      }
      const Seen& s = seen[e];
      if (out_ != nullptr && (s.value != nullptr || s.extension != nullptr)) {
        if (s.extension != nullptr) writable_ = false;  // "_x": written by the caller's writer
        PutKey(s.json_name, /*comma=*/!first);
        first = false;
      }
      Element(elements[e], s);
    }
    if (out_ != nullptr) Put('}');
    if (&type == known_.extension) Ext1(seen, touched, elements);
    for (const std::uint32_t e : touched) {
      Seen& s = seen[e];  // back to empty: only these three are read before being set
      s.value = nullptr;
      s.extension = nullptr;
      s.json_name = {};
    }
    touched.clear();
    --depth_;
  }

  // TypeInfo::MatchElement(name), answered without hashing when `name` is the JSON name of one
  // of the few elements from `start` on: members mostly come in specification order, so the
  // next member is usually a few elements further. Only names for which MatchElement answers
  // that very element are compared (TypeFacts::name_length), so the answer is the same.
  static fhir::r4::ElementMatch MatchInOrder(const TypeInfo& type, const TypeFacts& facts,
                                             std::size_t start, std::string_view name) {
    constexpr std::size_t kScan = 12;
    const std::size_t end =
        name.empty() ? 0 : std::min(facts.name_length.size(), start + kScan);  // 0: not eligible
    for (std::size_t e = start; e < end; ++e) {
      if (facts.name_length[e] != name.size()) continue;
      const ElementInfo& element = type.elements[e];
      if (std::memcmp(element.name.data(), name.data(), name.size()) != 0) continue;
      fhir::r4::ElementMatch match;
      match.element = &element;
      match.type = facts.value_type[e];
      return match;
    }
    return type.MatchElement(name);  // hashed
  }

  // ext-1: extension.exists() != value.exists().
  void Ext1(const std::vector<Seen>& seen, const std::vector<std::uint32_t>& present,
            std::span<const ElementInfo> elements) {
    bool has_extension = false;
    bool has_value = false;
    for (const std::uint32_t e : present) {
      if (seen[e].value == nullptr && seen[e].extension == nullptr) continue;
      if (elements[e].name == "extension") has_extension = true;
      if (elements[e].is_choice && elements[e].name == "value") has_value = true;
    }
    if (has_extension == has_value) {
      Error(kCodeExt1, has_value ? "an extension must not have both extensions and a value (ext-1)"
                                 : "an extension must have either extensions or a value (ext-1)");
    }
  }

  void Element(const ElementInfo& element, const Seen& s) {
    if (s.value == nullptr && s.extension == nullptr) {  // absent: most elements of most objects
      if (element.min > 0) {
        const std::size_t old = PushMember(element.name);
        if (element.is_choice) PushRaw("[x]");
        Error(kCodeMin, "required element " + std::string(element.name) +
                            (element.is_choice ? "[x]" : "") + " is missing (min " +
                            std::to_string(element.min) + ")");
        Pop(old);
      }
      return;
    }
    const std::string_view json_name = s.json_name.empty() ? element.name : s.json_name;
    const std::size_t old = PushMember(json_name);
    // Resolved when the member was matched (TypeInfo::MatchElement): the choice type, the
    // backbone type, or the declared type with System.* codes read as FHIR primitives.
    const TypeInfo* type = s.type;
    if (type == nullptr) {
      in_order_ = false;  // not walked: its objects' order unknown
      Pop(old);
      return;  // metadata without a usable type: nothing more we can check
    }
    const bool primitive = type->kind == TypeKind::kPrimitive;
    if (s.extension != nullptr && !primitive) {
      Pop(old);
      extension_name_ = "_" + std::string(json_name);
      const std::size_t o2 = PushMember(extension_name_);
      Error(kCodeUnknown, "'_" + std::string(json_name) +
                              "' is only allowed for primitive elements (json.html#primitive)");
      Pop(o2);
      if (s.value == nullptr) return;
      PushMember(json_name);
    }

    std::size_t count = 0;
    if (element.IsArray()) {
      count = ArrayElement(element, s, *type, primitive);
    } else {
      count = SingleElement(element, s, *type, primitive);
    }
    if (count < element.min) {
      Error(kCodeMin, "element " + std::string(element.name) + " needs at least " +
                          std::to_string(element.min) + " value(s)");
    }
    if (element.max != fhir::r4::kUnbounded && count > element.max) {
      Error(kCodeMax, "element " + std::string(element.name) + " allows at most " +
                          std::to_string(element.max) + " value(s)");
    }
    Pop(old);
  }

  // Returns the number of occurrences counted for cardinality.
  std::size_t SingleElement(const ElementInfo& element, const Seen& s, const TypeInfo& type,
                            bool primitive) {
    if ((s.value != nullptr && s.value->IsArray()) ||
        (s.extension != nullptr && s.extension->IsArray())) {
      Error(kCodeArrayUnexpected,
            "element " + std::string(element.name) + " has max 1 and must not be an array");
      return s.value != nullptr && s.value->IsArray() ? s.value->Size() : 1;
    }
    const bool has_value = s.value != nullptr && !s.value->IsNull();
    if (s.value != nullptr && s.value->IsNull()) {
      Error(kCodeEmpty, "element must not be null");
    }
    if (primitive && s.extension != nullptr) PrimitiveExtension(*s.extension);
    if (has_value) Value(*s.value, element, s, type);
    return has_value || (primitive && s.extension != nullptr && s.extension->IsObject()) ? 1 : 0;
  }

  std::size_t ArrayElement(const ElementInfo& element, const Seen& s, const TypeInfo& type,
                           bool primitive) {
    const Node* values = s.value;
    const Node* extensions = primitive ? s.extension : nullptr;
    if (values != nullptr && !values->IsArray()) {
      Error(kCodeArrayExpected, "element " + std::string(element.name) + " must be an array");
      return 1;
    }
    if (extensions != nullptr && !extensions->IsArray()) {
      Error(kCodePrimitiveExtension,
            "'_" + std::string(element.name) + "' must be an array parallel to the values");
      extensions = nullptr;
    }
    if (values != nullptr && values->Size() == 0) {
      Error(kCodeEmpty, "an array must not be empty");
      return 0;
    }
    if (extensions != nullptr && extensions->Size() == 0) {
      Error(kCodeEmpty, "an array must not be empty");
      extensions = nullptr;
    }
    if (values != nullptr && extensions != nullptr && values->Size() != extensions->Size()) {
      Error(kCodePrimitiveExtension,
            "'_" + std::string(element.name) + "' must have as many items as the values array");
      extensions = nullptr;
    }
    if (values == nullptr && extensions == nullptr) return 0;
    const std::size_t n = values != nullptr ? values->Size() : extensions->Size();
    std::size_t count = 0;
    if (out_ != nullptr) Put('[');
    for (std::size_t i = 0; i < n; ++i) {
      if (out_ != nullptr && i > 0) Put(',');
      const Node* value = values != nullptr ? &values->Items()[i] : nullptr;
      const Node* extension = extensions != nullptr ? &extensions->Items()[i] : nullptr;
      const bool has_value = value != nullptr && !value->IsNull();
      const bool has_extension = extension != nullptr && !extension->IsNull();
      const std::size_t old = PushIndex(i);
      if (!has_value && !has_extension) {
        Error(kCodeEmpty, "an array item must not be null unless its '_' partner has content");
      }
      if (has_extension) PrimitiveExtension(*extension);
      if (has_value) Value(*value, element, s, type);
      if (has_value || has_extension) ++count;
      Pop(old);
    }
    if (out_ != nullptr) Put(']');
    return count;
  }

  // The "_x" object of a primitive: an Element (id, extension) without a value.
  void PrimitiveExtension(const Node& extension) {
    if (!extension.IsObject()) {
      Error(kCodePrimitiveExtension, "a primitive's '_' partner must be an object (id, extension)");
      return;
    }
    static const TypeInfo* const element_type = FindType("Element");
    if (element_type != nullptr) Object(extension, *element_type, /*is_resource=*/false);
  }

  // One value (not null, not an array item container) of `type`.
  void Value(const Node& value, const ElementInfo& element, const Seen& s, const TypeInfo& type) {
    if (type.kind == TypeKind::kPrimitive) {
      Primitive(value, s.json_name.empty() ? element.name : s.json_name, element, type);
      return;
    }
    if (!value.IsObject()) {
      Error(kCodeType, "element " + std::string(element.name) + " must be a JSON object (type " +
                           std::string(type.name) + ")");
      return;
    }
    if (type.kind == TypeKind::kResource) {  // contained, Bundle.entry.resource, Parameters
      Resource(value, element.name == "contained");
      return;
    }
    Object(value, type, /*is_resource=*/false);
    if (&type == known_.reference) {
      if (impl_.options.check_references) {
        Reference(value, element, s);
      } else if (const Node* ref = value.Find("reference"); scope_ != nullptr && ref != nullptr &&
                                                            ref->IsString() &&
                                                            ref->Text().rfind('#', 0) == 0) {
        NoteLocalReference(ref->Text());  // dom-3 still needs to know what is referenced
      }
    } else if (element.binding == BindingStrength::kRequired && impl_.options.check_bindings) {
      if (&type == known_.coding) {
        CodingBinding(value, element);
      } else if (&type == known_.codeable_concept) {
        ConceptBinding(value, element);
      }
    }
  }

  // `name`: the JSON name of the element ("effectiveDateTime" for a choice), for messages.
  void Primitive(const Node& value, std::string_view name, const ElementInfo& element,
                 const TypeInfo& type) {
    const TypeFacts* facts = facts_.Find(type);
    std::optional<TypeFacts> own_facts;  // a TypeInfo built by hand (not in the generated table)
    if (facts == nullptr) [[unlikely]] {
      FactTable::Fill(type, own_facts.emplace());
      facts = &*own_facts;
    }
    const bool kind_ok = facts->json_kind == JsonKind::kBoolean  ? value.IsBool()
                         : facts->json_kind == JsonKind::kNumber ? value.IsNumber()
                                                                 : value.IsString();
    if (out_ != nullptr) {
      if (value.IsBool()) {
        Put(value.AsBool() ? std::string_view("true") : std::string_view("false"));
      } else if (value.IsNumber()) {
        Put(value.Text());
      } else if (value.IsString()) {
        PutString(value.Text());
      }
    }
    if (!kind_ok) {
      const std::string_view json_type = type.json_type.empty() ? "string" : type.json_type;
      Error(kCodeType, "element " + std::string(name) + " must be a JSON " +
                           std::string(json_type) + " (type " + std::string(type.name) + ")");
      return;
    }
    if (value.IsBool()) return;
    const std::string_view text = value.Text();
    if (value.IsString() && text.empty()) {
      Error(kCodeEmpty, "a string must not be empty (ele-1)");
      return;
    }
    const bool format_ok = facts->check != nullptr ? facts->check(text)
                                                   : MatchesPrimitive(type.name, text, type.regex);
    if (!format_ok) {
      Error(FormatCode(type.name),
            "element " + std::string(name) + " is not a valid " + std::string(type.name));
      return;
    }
    // dom-3 counts uri/canonical/url values "#id" as references to contained resources.
    if (scope_ != nullptr && !text.empty() && text[0] == '#' && facts->uri_like) {
      NoteLocalReference(text);
    }
    if (element.binding == BindingStrength::kRequired && impl_.options.check_bindings &&
        facts->is_code) {
      const auto* value_set = Bindings().Find(element);
      if (value_set != nullptr && value_set->complete && !value_set->Contains(text)) {
        Error(kCodeBinding, "code of " + std::string(name) + " is not in the required value set " +
                                std::string(element.value_set));
      }
    }
  }

  // --- bindings ------------------------------------------------------------------------------

  static bool CodingIn(const Node& coding, const fhir::r4::ValueSetInfo& value_set) {
    const Node* code = coding.Find("code");
    if (code == nullptr || !code->IsString()) return true;  // nothing to check
    const Node* system = coding.Find("system");
    return value_set.Contains(
        code->Text(), system != nullptr ? std::string_view(system->Text()) : std::string_view());
  }

  void CodingBinding(const Node& coding, const ElementInfo& element) {
    const auto* value_set = Bindings().Find(element);
    if (value_set == nullptr || !value_set->complete) return;
    if (!CodingIn(coding, *value_set)) {
      Error(kCodeBinding, "coding of " + std::string(element.name) +
                              " is not in the required value set " +
                              std::string(element.value_set));
    }
  }

  // A CodeableConcept satisfies a required binding when one of its codings is in the value set.
  // A concept with text only is not checked (nothing coded to compare).
  void ConceptBinding(const Node& codeable_concept, const ElementInfo& element) {
    const auto* value_set = Bindings().Find(element);
    if (value_set == nullptr || !value_set->complete) return;
    const Node* codings = codeable_concept.Find("coding");
    if (codings == nullptr || !codings->IsArray() || codings->Size() == 0) return;
    for (const Node& coding : codings->Items()) {
      if (coding.IsObject() && coding.Find("code") != nullptr && CodingIn(coding, *value_set)) {
        return;
      }
    }
    Error(kCodeBinding, "no coding of " + std::string(element.name) +
                            " is in the required value set " + std::string(element.value_set));
  }

  // --- references ----------------------------------------------------------------------------

  void NoteLocalReference(std::string_view reference) {
    if (reference == "#") {
      scope_->references_container = true;
    } else {
      scope_->referenced.emplace(reference.substr(1));
    }
  }

  // references.html: local "#id" (ref-1), urn:uuid/urn:oid within a Bundle, "Type/id" relative
  // and absolute ".../Type/id" references; the resolved type must be an allowed target.
  void Reference(const Node& reference_node, const ElementInfo& element, const Seen& s) {
    const Node* ref = reference_node.Find("reference");
    const Node* declared = reference_node.Find("type");
    if (ref == nullptr || !ref->IsString() || ref->Text().empty()) return;
    const std::string_view text = ref->Text();
    std::string resolved_type;
    const std::size_t old = PushMember("reference");
    if (text[0] == '#') {
      if (scope_ != nullptr) NoteLocalReference(text);
      if (text != "#") {
        const std::string* contained_type = nullptr;
        if (scope_ != nullptr) {
          const auto it = scope_->contained_types.find(text.substr(1));
          if (it != scope_->contained_types.end()) contained_type = &it->second;
        }
        if (contained_type == nullptr) {
          Error(kCodeUnresolved,
                "local reference does not match the id of a contained resource (ref-1)");
          Pop(old);
          return;
        }
        resolved_type = *contained_type;
      }
    } else if (text.rfind("urn:uuid:", 0) == 0 || text.rfind("urn:oid:", 0) == 0) {
      if (!bundles_.empty()) {
        const auto& map = bundles_.back()->by_full_url;
        const auto it = map.find(text);
        if (it == map.end()) {
          Error(kCodeUnresolved,
                "urn: reference does not match the fullUrl of any entry of the Bundle");
          Pop(old);
          return;
        }
        resolved_type = it->second;
      }
    } else if (text.find('?') == std::string::npos) {  // '?': a conditional reference
      resolved_type = LiteralType(text);
    }
    const std::string_view type_code = element.is_choice ? s.choice_type : "Reference";
    if (!resolved_type.empty() && !TargetAllows(element.types, type_code, resolved_type)) {
      Error(kCodeTarget,
            "reference points to a resource type not allowed for " + std::string(element.name));
    }
    Pop(old);
    if (declared != nullptr && declared->IsString() && !resolved_type.empty()) {
      const std::string_view t = declared->Text();
      const bool same = t == resolved_type || t == std::string(kSdBase) + resolved_type;
      if (!same) {
        const std::size_t o2 = PushMember("type");
        Error(kCodeTarget, "Reference.type does not match the type of the referenced resource");
        Pop(o2);
      }
    }
  }

  // The resource type named by a literal reference "Type/id[/_history/v]" (relative) or
  // "<base>/Type/id[/_history/v]" (absolute). Empty when it cannot be read; a relative
  // reference that is not of that form is reported (references.html#literal).
  std::string LiteralType(std::string_view text) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    while (start <= text.size()) {
      const std::size_t slash = text.find('/', start);
      const std::size_t end = slash == std::string_view::npos ? text.size() : slash;
      parts.push_back(text.substr(start, end - start));
      if (slash == std::string_view::npos) break;
      start = slash + 1;
    }
    if (parts.size() >= 4 && parts[parts.size() - 2] == "_history") parts.resize(parts.size() - 2);
    const bool absolute = text.find("://") != std::string_view::npos;
    if (parts.size() >= 2) {
      const std::string_view type = parts[parts.size() - 2];
      const std::string_view id = parts.back();
      if (fhir::r4::IsResourceType(type) && IsId(id)) {
        if (absolute || parts.size() == 2) return std::string(type);
      }
    }
    if (!absolute && text.rfind("urn:", 0) != 0) {
      Report(Severity::kWarning, kCodeRefFormat,
             "relative reference is not of the form Type/id with a known resource type");
    }
    return {};
  }

  std::string* out_;
  std::size_t out_len_;  // bytes of *out_ written (the rest is room)
  std::string escaped_;  // PutString's rare escaping path
  bool writable_ = true;
  const Validator::Impl& impl_;
  IssueSink& sink_;
  const Location& base_;
  std::unique_ptr<Scratch> own_;  // only for a walk nested in another on the same thread
  Scratch& scratch_;
  std::vector<Segment>& path_;
  std::size_t path_depth_ = 0;
  std::string extension_name_;  // "_name" while an issue about it is reported
  std::vector<Level>& levels_;
  const FactTable& facts_;
  const KnownTypes& known_;
  ResourceScope* scope_ = nullptr;
  std::vector<BundleScope*> bundles_;
  int depth_ = 0;
  bool depth_reported_ = false;
  bool in_order_ = true;
};

}  // namespace

Validator::Validator(ValidatorOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = options;
}
Validator::~Validator() = default;
Validator::Validator(Validator&&) noexcept = default;
Validator& Validator::operator=(Validator&&) noexcept = default;

void Validator::AddChecker(std::unique_ptr<Checker> checker) {
  impl_->checkers.push_back(std::move(checker));
}

bool Validator::Validate(const fhir::Node& resource, IssueSink& issues,
                         const Location& where) const {
  CountingSink counting(issues);
  Walker walker(*impl_, counting, where);
  walker.Root(resource);
  return counting.Errors() == 0;
}

bool Validator::Validate(const fhir::Node& resource, IssueSink& issues, const Location& where,
                         std::string& json, bool& written) const {
  CountingSink counting(issues);
  const std::size_t mark = json.size();
  bool valid = false;
  {
    Walker walker(*impl_, counting, where, &json);
    walker.Root(resource);
    walker.FinishOutput();
    valid = counting.Errors() == 0;
    written = valid && walker.Written();
  }
  if (!written) json.resize(mark);
  return valid;
}

bool Validator::Validate(const fhir::Node& resource, IssueSink& issues, const Location& where,
                         bool& members_in_order) const {
  CountingSink counting(issues);
  Walker walker(*impl_, counting, where);
  walker.Root(resource);
  members_in_order = walker.InOrder();
  return counting.Errors() == 0;
}

}  // namespace kakehashi::conformance
