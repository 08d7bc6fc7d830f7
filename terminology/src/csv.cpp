#include "csv.hpp"

#include "kakehashi/common/charset.hpp"

namespace kakehashi::terminology::detail {

DecodedText DecodeMasterBytes(std::string_view bytes, std::string_view source, IssueSink& issues) {
  DecodedText out;
  // Digest §5: "detect cp932 vs UTF-8". Valid UTF-8 with any byte >= 0x80 is practically never
  // CP932 text, and pure ASCII decodes identically either way.
  if (common::IsValidUtf8(bytes)) {
    if (bytes.substr(0, 3) == "\xEF\xBB\xBF") bytes.remove_prefix(3);
    out.utf8 = std::string(bytes);
    out.encoding = "UTF-8";
    return out;
  }
  out.encoding = "Windows-31J";
  std::vector<common::DecodeProblem> problems;
  common::DecodeOptions options;
  options.mode = common::DecodeMode::kLenient;
  auto decoded = common::Decode(bytes, common::Charset::kCp932, &problems, options);
  out.utf8 = decoded ? std::move(*decoded) : std::string();
  for (const auto& p : problems) {
    if (!common::IsError(p.kind)) continue;
    Location where;
    where.source = std::string(source);
    where.byte = static_cast<std::int64_t>(p.offset);
    issues.Warning("terminology.load.encoding", where,
                   "bytes not valid in Windows-31J (CP932) were replaced by U+FFFD");
  }
  return out;
}

void ForEachCsvRecord(std::string_view text, std::string_view source, IssueSink& issues,
                      const std::function<void(std::size_t, std::vector<std::string>&)>& row) {
  std::vector<std::string> fields;
  std::string field;
  std::size_t line = 1;
  std::size_t record_line = 1;
  bool in_quotes = false;
  bool any = false;  // the current record has content
  auto end_record = [&]() {
    fields.push_back(std::move(field));
    field.clear();
    bool empty = fields.size() == 1 && fields[0].empty() && !any;
    if (!empty) row(record_line, fields);
    fields.clear();
    any = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          ++i;
        } else {
          in_quotes = false;
        }
      } else {
        if (c == '\n') ++line;
        field += c;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_quotes = true;
        any = true;
        break;
      case ',':
        fields.push_back(std::move(field));
        field.clear();
        any = true;
        break;
      case '\r':
        if (i + 1 < text.size() && text[i + 1] == '\n') break;  // CRLF: handled at LF
        [[fallthrough]];
      case '\n':
        end_record();
        ++line;
        record_line = line;
        break;
      case '\x1a':  // DOS end-of-file marker some master files still carry
        break;
      default: field += c; any = true;
    }
  }
  if (in_quotes) {
    Location where;
    where.source = std::string(source);
    where.line = static_cast<std::int64_t>(record_line);
    issues.Error("terminology.load.csv_quote", where,
                 "a quoted field is not closed before the end of the file");
  }
  if (any || !field.empty() || !fields.empty()) end_record();
}

}  // namespace kakehashi::terminology::detail
