#include "kakehashi/fhir/errc.hpp"

#include <string>

namespace kakehashi::fhir {
namespace {

class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "kakehashi.fhir"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::kJsonSyntax: return "JSON syntax error";
      case errc::kJsonEncoding: return "JSON text is not valid UTF-8";
      case errc::kJsonTooDeep: return "JSON nesting too deep";
      case errc::kJsonTooLarge: return "JSON text too large";
      case errc::kNotResource: return "not a FHIR resource";
      case errc::kInvalid: return "resource does not fit the FHIR R4 model";
    }
    return "unknown kakehashi.fhir error";
  }
};

}  // namespace

const boost::system::error_category& fhir_category() noexcept {
  static const Category category;
  return category;
}

boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), fhir_category()};
}

}  // namespace kakehashi::fhir
