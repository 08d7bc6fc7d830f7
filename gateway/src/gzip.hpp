// gzip (RFC 1952) via zlib, private to the gateway: Beast has no content coding
// (docs/decisions/0006-gateway-gzip-zlib.md).
#pragma once

#include <string>
#include <string_view>

namespace kakehashi::gateway::detail {

bool GzipCompress(std::string_view input, std::string& out);
bool GzipDecompress(std::string_view input, std::string& out, std::size_t limit);

}  // namespace kakehashi::gateway::detail
