// Base64 encoding (RFC 4648 §4, standard alphabet, '=' padding), as FHIR base64Binary
// (datatypes.html#base64Binary) requires for Attachment.data and Binary.data.
#pragma once

#include <string>
#include <string_view>

namespace kakehashi {

std::string Base64Encode(std::string_view bytes);

}  // namespace kakehashi
