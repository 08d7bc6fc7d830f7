// Operational error codes of the mapping module (category "kakehashi.mapping").
#pragma once

#include <boost/system/error_code.hpp>

#include <type_traits>

namespace kakehashi::mapping {

enum class errc {
  kRulesNotFound = 1,  // the rule directory (built-in or --rules) does not exist
  kRuleSyntax = 2,     // a rule file or table is not valid JSON-with-comments / TSV
  kRuleInvalid = 3,    // a rule refers to an unknown resource, datatype, table or function
};

const boost::system::error_category& mapping_category() noexcept;
boost::system::error_code make_error_code(errc e) noexcept;

}  // namespace kakehashi::mapping

template <>
struct boost::system::is_error_code_enum<kakehashi::mapping::errc> : std::true_type {};
