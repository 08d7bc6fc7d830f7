// Private: classification of one HL7 escape sequence (shared by Unescape and the parser's check).
#pragma once

#include "kakehashi/adapters/hl7v2/message.hpp"

#include <string_view>

namespace kakehashi::adapters::hl7v2::detail {

enum class EscapeKind {
  kDelimiter,  // \F\ \S\ \T\ \R\ \E\  -> one char
  kHex,        // \Xhh..\ valid UTF-8 -> bytes
  kLineBreak,  // \.br\ \.sp\ ...      -> "\n"
  kRemoved,    // \H\ \N\ \Cxxyy\ \Mxxyyzz\ -> nothing
  kUnknown,    // kept verbatim
};

// `content` is the text between the two escape characters.
EscapeKind Classify(std::string_view content);

}  // namespace kakehashi::adapters::hl7v2::detail
