#include "subset.hpp"

#include "detail/json.hpp"
#include "kakehashi/fhir/r4/meta.hpp"

#include <algorithm>

namespace kakehashi::gateway::detail {
namespace {

namespace r4 = kakehashi::fhir::r4;

constexpr std::string_view kSubsettedSystem =
    "http://terminology.hl7.org/CodeSystem/v3-ObservationValue";

// The element a member name `k` stands for ("_status" is the extension companion of "status").
const r4::ElementInfo* ElementOf(const r4::TypeInfo* info, std::string_view k) {
  if (info == nullptr) return nullptr;
  if (k.starts_with('_')) k.remove_prefix(1);
  return info->FindElement(k);
}

// _summary=true inside one object of `info` (a resource or a backbone element): keeps what R4
// marks isSummary, or makes mandatory, and recurses into kept backbone values.
void KeepSummary(Json& object, const r4::TypeInfo* info, bool top) {
  auto& members = object.Members();
  std::vector<std::pair<std::string, Json>> kept;
  kept.reserve(members.size());
  for (auto& [k, v] : members) {
    bool keep = top && (k == "resourceType" || k == "id" || k == "meta");
    const r4::ElementInfo* e = ElementOf(info, k);
    if (!keep && e != nullptr) keep = e->is_summary || e->min >= 1;
    if (!keep) continue;
    if (e != nullptr && !e->element_type.empty() && !k.starts_with('_')) {
      const r4::TypeInfo* child = r4::FindType(e->element_type);
      if (child != nullptr && child->kind == r4::TypeKind::kBackbone) {
        if (v.IsObject()) KeepSummary(v, child, false);
        if (v.IsArray()) {
          for (Json& item : v.Items()) {
            if (item.IsObject()) KeepSummary(item, child, false);
          }
        }
      }
    }
    kept.emplace_back(std::move(k), std::move(v));
  }
  members = std::move(kept);
}

void Tag(Json& resource) {
  Json* meta = resource.Find("meta");
  if (meta == nullptr || !meta->IsObject()) {
    // A new meta goes where R4 orders it: after resourceType and id.
    resource.Remove("meta");
    auto& members = resource.Members();
    auto at = std::find_if(members.begin(), members.end(), [](const auto& m) {
      return m.first != "resourceType" && m.first != "id" && m.first != "_id";
    });
    meta = &members.emplace(at, "meta", Json::Object())->second;
  }
  Json* tags = meta->Find("tag");
  if (tags == nullptr || !tags->IsArray()) tags = &meta->Set("tag", Json::Array());
  for (const Json& t : tags->Items()) {
    if (t.Str("system") == kSubsettedSystem && t.Str("code") == "SUBSETTED") return;
  }
  Json tag = Json::Object();
  tag.Set("system", Json::String(std::string(kSubsettedSystem)));
  tag.Set("code", Json::String("SUBSETTED"));
  tags->Push(std::move(tag));
}

}  // namespace

std::optional<Summary> ParseSummary(std::string_view value) {
  if (value == "true") return Summary::kTrue;
  if (value == "text") return Summary::kText;
  if (value == "data") return Summary::kData;
  if (value == "count") return Summary::kCount;
  if (value == "false") return Summary::kFalse;
  return std::nullopt;
}

std::optional<Failure> CheckSubset(const SubsetSpec& spec) {
  if (!spec.elements.empty() && spec.summary != Summary::kFalse &&
      spec.summary != Summary::kCount) {
    return Bad("_summary=true|text|data and _elements cannot be combined", "not-supported");
  }
  return std::nullopt;
}

std::optional<Failure> ParseSubsetParams(const QueryParams& params, SubsetSpec& spec,
                                         bool allow_count) {
  for (const auto& [k, v] : params) {
    if (k == "_summary") {
      auto s = ParseSummary(v);
      if (!s || (*s == Summary::kCount && !allow_count)) {
        return Bad(std::string("_summary must be ") + (allow_count
                                                           ? "true, text, data, count or false"
                                                           : "true, text, data or false"));
      }
      spec.summary = *s;
    } else if (k == "_elements") {
      std::string e;
      bool escaped = false;
      auto flush = [&] {
        if (!e.empty()) spec.elements.push_back(std::move(e));
        e.clear();
      };
      for (char c : v) {
        if (escaped) {
          e += c;
          escaped = false;
        } else if (c == '\\') {
          escaped = true;
        } else if (c == ',') {
          flush();
        } else {
          e += c;
        }
      }
      flush();
    }
  }
  return CheckSubset(spec);
}

std::string Subset(const std::string& json, const SubsetSpec& spec) {
  if (!spec.Active()) return json;
  Json resource;
  JsonError error;
  if (!ParseJson(json, resource, error) || !resource.IsObject()) return json;
  const r4::TypeInfo* info = r4::FindType(resource.Str("resourceType"));
  auto& members = resource.Members();
  if (spec.summary == Summary::kTrue) {
    KeepSummary(resource, info, true);
  } else {
    auto requested = [&](std::string_view name) {
      return std::find(spec.elements.begin(), spec.elements.end(), name) != spec.elements.end();
    };
    std::vector<std::pair<std::string, Json>> kept;
    kept.reserve(members.size());
    for (auto& [k, v] : members) {
      std::string_view name = k;
      if (name.starts_with('_')) name.remove_prefix(1);
      const r4::ElementInfo* e = ElementOf(info, k);
      bool keep = false;
      if (spec.summary == Summary::kData) {
        keep = name != "text";
      } else {
        keep =
            k == "resourceType" || name == "id" || name == "meta" || (e != nullptr && e->min >= 1);
        if (spec.summary == Summary::kText) {
          keep = keep || name == "text";
        } else {  // _elements
          keep = keep || requested(name) || (e != nullptr && requested(e->name));
        }
      }
      if (keep) kept.emplace_back(std::move(k), std::move(v));
    }
    members = std::move(kept);
  }
  Tag(resource);
  return ToJsonText(resource);
}

}  // namespace kakehashi::gateway::detail
