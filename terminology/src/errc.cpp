#include "kakehashi/terminology/errc.hpp"

#include <string>

namespace kakehashi::terminology {
namespace {

class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "kakehashi.terminology"; }
  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::kDatabase: return "the terminology database could not be opened, read or written";
      case errc::kUnsupportedDb: return "the terminology database URL names an unsupported backend";
      case errc::kTableSyntax: return "a terminology code table is malformed";
      case errc::kUnknownSystem: return "a code system URI is not known to the terminology module";
      case errc::kMasterFormat: return "a master file does not have the expected layout";
      case errc::kUnknownKind: return "no master loader exists for this kind";
      case errc::kIoError: return "a terminology file could not be read";
    }
    return "unknown terminology error";
  }
};

}  // namespace

const boost::system::error_category& terminology_category() noexcept {
  static const Category category;
  return category;
}

boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), terminology_category()};
}

}  // namespace kakehashi::terminology
