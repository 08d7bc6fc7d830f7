// Operational error codes of the terminology module (category "kakehashi.terminology").
// Problems in *data* (a bad row in a master, an unknown system URI) are Issues, not errc values.
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace kakehashi::terminology {

enum class errc {
  kDatabase = 1,       // the terminology database could not be opened, read or written
  kUnsupportedDb = 2,  // the --db URL names a backend this build does not include
  kTableSyntax = 3,    // a code table (TSV) is malformed: wrong columns, duplicate key
  kUnknownSystem = 4,  // a table or request names a code system no alias table knows
  kMasterFormat = 5,   // a master file does not have the layout its kind requires
  kUnknownKind = 6,    // `load KIND`: no loader for this kind
  kIoError = 7,        // a file could not be read
};

const boost::system::error_category& terminology_category() noexcept;
boost::system::error_code make_error_code(errc e) noexcept;

}  // namespace kakehashi::terminology

template <>
struct boost::system::is_error_code_enum<kakehashi::terminology::errc> : std::true_type {};
