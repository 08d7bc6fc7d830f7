// Compiles the generated SearchParameter table once. Every row was checked by the generator, so
// a row that fails to compile here is a generator/evaluator mismatch: it is skipped (and the
// drift test in tests/gateway catches it).
#include "search_params.hpp"

#include <algorithm>
#include <set>

namespace kakehashi::gateway::detail {

namespace {

// One compiled path as comparable text.
std::string PathKey(const FhirPath& path) {
  std::string key = path.base;
  for (const FhirPathStep& step : path.steps) {
    key += '\x1f';
    key += step.name;
    key += '\x1e';
    key += step.resolve_is;
    key += '\x1e';
    key += step.where_field;
    key += '\x1e';
    key += step.where_value;
  }
  return key;
}

// A composite's components as comparable text (types and relative paths, not their codes):
// two composites with the same components select the same pairs from the same contexts.
std::string ComponentsKey(const CompiledParam& param) {
  std::string key;
  for (const CompiledComponent& c : param.components) {
    key += '\x1d';
    key += std::to_string(static_cast<int>(c.type));
    for (const FhirPath& path : c.paths) key += '\x1c' + PathKey(path);
  }
  return key;
}

// Marks the parameters whose paths are exactly the union of other parameters' paths of the same
// type (R4 Observation: combo-code = code | component-code, combo-value-quantity =
// value-quantity | component-value-quantity, …; composites by context with equal components:
// combo-code-value-quantity = code-value-quantity | component-code-value-quantity). Smaller
// parameters are decided first, so a union is always made of parameters that are indexed
// themselves.
void FindUnions(std::map<std::string, CompiledParam, std::less<>>& params) {
  std::vector<std::pair<std::string_view, CompiledParam*>> by_size;
  std::map<std::string_view, std::set<std::string>> keys;
  for (auto& [code, param] : params) {
    by_size.emplace_back(code, &param);
    const std::string components = ComponentsKey(param);
    for (const FhirPath& path : param.paths) keys[code].insert(PathKey(path) + components);
  }
  std::stable_sort(by_size.begin(), by_size.end(), [&keys](const auto& a, const auto& b) {
    return keys[a.first].size() < keys[b.first].size();
  });
  for (auto& [code, param] : by_size) {
    const std::set<std::string>& mine = keys[code];
    if (mine.size() < 2) continue;
    std::set<std::string> covered;
    std::vector<std::string> parts;
    for (const auto& [other_code, other] : by_size) {
      if (other == param || other->def->type != param->def->type || !other->union_of.empty()) {
        continue;
      }
      const std::set<std::string>& theirs = keys[other_code];
      if (theirs.size() >= mine.size() ||
          !std::includes(mine.begin(), mine.end(), theirs.begin(), theirs.end()) ||
          std::includes(covered.begin(), covered.end(), theirs.begin(), theirs.end())) {
        continue;
      }
      covered.insert(theirs.begin(), theirs.end());
      parts.emplace_back(other_code);
    }
    if (covered == mine) param->union_of = std::move(parts);
  }
}

// Marks the reference parameters whose paths are another reference parameter's paths, each
// ending in `.where(resolve() is T)` with one T: R4's `patient` next to `subject` in most
// clinical resources. Their rows are the other's rows whose target type is T.
void FindRestrictions(std::map<std::string, CompiledParam, std::less<>>& params) {
  for (auto& [code, param] : params) {
    if (param.def->type != ParamType::kReference || !param.union_of.empty() ||
        param.paths.empty()) {
      continue;
    }
    const std::string target =
        param.paths[0].steps.empty() ? std::string() : param.paths[0].steps.back().resolve_is;
    if (target.empty()) continue;
    std::set<std::string> unrestricted;
    bool uniform = true;
    for (FhirPath path : param.paths) {
      if (path.steps.empty() || path.steps.back().resolve_is != target) {
        uniform = false;
        break;
      }
      path.steps.back().resolve_is.clear();
      unrestricted.insert(PathKey(path));
    }
    if (!uniform) continue;
    for (const auto& [other_code, other] : params) {
      if (&other == &param || other.def->type != ParamType::kReference || !other.union_of.empty()) {
        continue;
      }
      std::set<std::string> theirs;
      for (const FhirPath& path : other.paths) theirs.insert(PathKey(path));
      if (theirs == unrestricted) {
        param.union_of = {other_code};
        param.only_target = target;
        break;
      }
    }
  }
}

std::vector<std::string_view> SplitUnion(std::string_view expression) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    std::size_t bar = expression.find('|', start);
    std::string_view part = expression.substr(start, bar - start);
    while (part.starts_with(' ')) part.remove_prefix(1);
    while (part.ends_with(' ')) part.remove_suffix(1);
    parts.push_back(part);
    if (bar == std::string_view::npos) return parts;
    start = bar + 1;
  }
}

// A composite's contexts and components; false when a part does not compile.
bool CompileComposite(const SearchParamDef& def, CompiledParam& param) {
  for (std::string_view part : SplitUnion(def.expression)) {
    if (part == def.resource_type) {
      param.paths.push_back(FhirPath{std::string(def.resource_type), {}});
      continue;
    }
    auto path = CompileFhirPath(part);
    if (!path || path->size() != 1) return false;
    param.paths.push_back(std::move(path->front()));
  }
  for (const CompositeParamDef& composite : CompositeParamDefs()) {
    if (composite.resource_type != def.resource_type || composite.code != def.code) continue;
    for (const CompositeComponentDef& c : composite.components) {
      CompiledComponent component{std::string(c.code), c.type, {}};
      for (std::string_view part : SplitUnion(c.expression)) {
        auto path = CompileFhirPath("X." + std::string(part));
        if (!path) return false;
        component.paths.insert(component.paths.end(), path->begin(), path->end());
      }
      param.components.push_back(std::move(component));
    }
  }
  return param.components.size() == 2;
}

}  // namespace

SearchParamRegistry::SearchParamRegistry() {
  std::vector<const SearchParamDef*> every_type;  // base Resource: _profile, _tag, …
  for (const SearchParamDef& def : SearchParamDefs()) {
    if (def.resource_type == "Resource") {
      every_type.push_back(&def);
      continue;
    }
    CompiledParam param;
    param.def = &def;
    if (def.type == ParamType::kComposite) {
      if (!CompileComposite(def, param)) continue;
    } else {
      auto paths = CompileFhirPath(def.expression);
      if (!paths) continue;
      param.paths = std::move(*paths);
    }
    by_type_[std::string(def.resource_type)].emplace(std::string(def.code), std::move(param));
  }
  // R4 resources without search parameters of their own have the Resource ones
  // (handler_util.cpp ResourceTypeNames serves these two as well).
  for (const char* type : {"Binary", "Parameters"}) by_type_[type];
  // The Resource parameters belong to every type (R4 search.html "Parameters for all
  // resources"): compiled once per type, their paths based on it ("Patient.meta.tag"), the
  // definition kept (its resource_type stays "Resource").
  for (auto& [type, params] : by_type_) {
    for (const SearchParamDef* def : every_type) {
      auto paths = CompileFhirPath(def->expression);
      if (!paths) continue;
      for (FhirPath& path : *paths) path.base = type;
      CompiledParam param;
      param.def = def;
      param.paths = std::move(*paths);
      params.emplace(std::string(def->code), std::move(param));
    }
  }
  for (auto& [type, params] : by_type_) {
    FindUnions(params);
    FindRestrictions(params);
    // A derived parameter must read rows that exist: one whose part is derived itself (a union
    // of a restriction, a restriction of a union) is indexed after all. Each pass only clears,
    // so this ends.
    for (bool changed = true; changed;) {
      changed = false;
      for (auto& [code, param] : params) {
        for (const std::string& part : param.union_of) {
          auto it = params.find(part);
          if (it == params.end() || !it->second.union_of.empty()) {
            param.union_of.clear();
            param.only_target.clear();
            changed = true;
            break;
          }
        }
      }
    }
    for (auto& [code, param] : params) {
      if (!param.union_of.empty()) continue;
      if (param.def->type == ParamType::kString)
        param.variant_code = code + std::string(kExactSuffix);
      if (param.def->type == ParamType::kToken) {
        param.variant_code = code + std::string(kTextSuffix);
        param.of_type_code = code + std::string(kOfTypeSuffix);
      }
      if (param.def->type == ParamType::kQuantity)
        param.variant_code = code + std::string(kUcumSuffix);
      if (param.def->type == ParamType::kReference)
        param.variant_code = code + std::string(kIdentifierSuffix);
    }
  }
}

IndexedParam SearchParamRegistry::IndexedAs(std::string_view type, std::string_view code) const {
  std::string_view suffix;
  if (auto colon = code.find(':'); colon != std::string_view::npos) {
    suffix = code.substr(colon);
    code = code.substr(0, colon);
  }
  const CompiledParam* param = Find(type, code);
  if (param == nullptr || param->union_of.empty()) {
    return {{std::string(code) + std::string(suffix)}, {}};
  }
  IndexedParam out{{}, param->only_target};
  for (const std::string& part : param->union_of) out.codes.push_back(part + std::string(suffix));
  return out;
}

const SearchParamRegistry& SearchParamRegistry::Instance() {
  static const SearchParamRegistry registry;
  return registry;
}

const CompiledParam* SearchParamRegistry::Find(std::string_view type, std::string_view code) const {
  auto t = by_type_.find(type);
  if (t == by_type_.end()) return nullptr;
  auto p = t->second.find(code);
  return p == t->second.end() ? nullptr : &p->second;
}

const std::map<std::string, CompiledParam, std::less<>>& SearchParamRegistry::ForType(
    std::string_view type) const {
  static const std::map<std::string, CompiledParam, std::less<>> kEmpty;
  auto t = by_type_.find(type);
  return t == by_type_.end() ? kEmpty : t->second;
}

std::vector<std::string> SearchParamRegistry::Types() const {
  std::vector<std::string> out;
  for (const auto& [type, params] : by_type_) out.push_back(type);
  return out;
}

}  // namespace kakehashi::gateway::detail
