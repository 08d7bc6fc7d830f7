#include "kakehashi/common/errc.hpp"

#include <string>

namespace kakehashi::common {
namespace {

class Category final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "kakehashi.common"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::kIoError: return "input/output error";
      case errc::kNotFound: return "not found";
      case errc::kInvalidArgument: return "invalid argument";
      case errc::kEncoding: return "bytes invalid for the declared character encoding";
      case errc::kUnsupported: return "not supported";
      case errc::kTooLarge: return "input exceeds a configured limit";
      case errc::kCancelled: return "cancelled";
    }
    return "unknown kakehashi.common error";
  }
};

}  // namespace

const boost::system::error_category& common_category() noexcept {
  static const Category category;
  return category;
}

boost::system::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), common_category()};
}

}  // namespace kakehashi::common
