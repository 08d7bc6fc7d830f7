#include "kakehashi/mapping/errc.hpp"

#include <string>

namespace kakehashi::mapping {
namespace {

class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "kakehashi.mapping"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::kRulesNotFound: return "the mapping rule directory does not exist";
      case errc::kRuleSyntax: return "a mapping rule file or code table is malformed";
      case errc::kRuleInvalid: return "a mapping rule refers to something that does not exist";
    }
    return "unknown mapping error";
  }
};

}  // namespace

const boost::system::error_category& mapping_category() noexcept {
  static const Category category;
  return category;
}

boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), mapping_category()};
}

}  // namespace kakehashi::mapping
