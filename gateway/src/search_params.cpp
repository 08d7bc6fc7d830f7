// Compiles the generated SearchParameter table once. Every row was checked by the generator, so
// a row that fails to compile here is a generator/evaluator mismatch: it is skipped (and the
// drift test in tests/gateway catches it).
#include "search_params.hpp"

namespace kakehashi::gateway::detail {

SearchParamRegistry::SearchParamRegistry() {
  for (const SearchParamDef& def : SearchParamDefs()) {
    auto paths = CompileFhirPath(def.expression);
    if (!paths) continue;
    CompiledParam param;
    param.def = &def;
    param.paths = std::move(*paths);
    by_type_[std::string(def.resource_type)].emplace(std::string(def.code), std::move(param));
  }
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
