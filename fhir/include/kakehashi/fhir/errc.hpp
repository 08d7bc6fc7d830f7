// Operational error codes of the fhir module (category "kakehashi.fhir").
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace kakehashi::fhir {

enum class errc {
  kJsonSyntax = 1,    // the text is not well-formed JSON
  kJsonEncoding = 2,  // the text is not valid UTF-8
  kJsonTooDeep = 3,   // nesting exceeds JsonLimits::max_depth
  kJsonTooLarge = 4,  // the text exceeds JsonLimits::max_bytes
  kNotResource = 5,   // a resource was expected (object with a known resourceType)
  kInvalid = 6,       // the resource does not fit the R4 model (details went to the IssueSink)
};

const boost::system::error_category& fhir_category() noexcept;
boost::system::error_code make_error_code(errc e) noexcept;

}  // namespace kakehashi::fhir

template <>
struct boost::system::is_error_code_enum<kakehashi::fhir::errc> : std::true_type {};
