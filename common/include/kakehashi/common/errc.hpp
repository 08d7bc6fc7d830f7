// Operational error codes of the common module (category "kakehashi.common").
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace kakehashi::common {

enum class errc {
  kIoError = 1,          // a file or directory could not be read or written
  kNotFound = 2,         // a named file, directory or entry does not exist
  kInvalidArgument = 3,  // a caller-supplied option is malformed
  kEncoding = 4,         // bytes are not valid in the declared character encoding
  kUnsupported = 5,      // a feature or encoding this build does not support
  kTooLarge = 6,         // input exceeds a configured limit
  kCancelled = 7,        // the operation was cancelled
};

const boost::system::error_category& common_category() noexcept;
boost::system::error_code make_error_code(errc e) noexcept;

}  // namespace kakehashi::common

template <>
struct boost::system::is_error_code_enum<kakehashi::common::errc> : std::true_type {};
