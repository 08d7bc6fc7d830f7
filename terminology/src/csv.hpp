// Private CSV reader for master files (digest terminology.md §5 loader rules): the whole file is
// decoded first (CP932 unless it is valid UTF-8; a UTF-8 BOM is dropped), then split into records:
// CRLF or LF line ends, fields optionally double-quoted ("" inside quotes is a quote; commas and
// line breaks inside quotes are data).
#pragma once

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/common/result.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::terminology::detail {

struct DecodedText {
  std::string utf8;
  std::string_view encoding;  // "UTF-8" or "Windows-31J"
};

// Decodes a master file. Undecodable bytes become U+FFFD and one warning
// "terminology.load.encoding" (with the byte offset) is reported; never fails.
DecodedText DecodeMasterBytes(std::string_view bytes, std::string_view source, IssueSink& issues);

// Calls `row(line, fields)` for each record of `text` (line = 1-based line of the record start).
// An unterminated quote at the end is reported as "terminology.load.csv_quote" (error) and the
// partial record is still delivered. Empty lines are skipped.
void ForEachCsvRecord(std::string_view text, std::string_view source, IssueSink& issues,
                      const std::function<void(std::size_t, std::vector<std::string>&)>& row);

}  // namespace kakehashi::terminology::detail
