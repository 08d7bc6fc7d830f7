#include "kakehashi/terminology/code_table.hpp"

#include "kakehashi/terminology/errc.hpp"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

namespace kakehashi::terminology {
namespace {

constexpr std::string_view kHeader[] = {"source_system", "source_code", "target_system",
                                        "target_code",   "display",     "version",
                                        "comment"};

std::vector<std::string_view> SplitTabs(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    auto tab = line.find('\t', start);
    out.push_back(line.substr(start, tab == std::string_view::npos ? tab : tab - start));
    if (tab == std::string_view::npos) break;
    start = tab + 1;
  }
  return out;
}

Location At(std::string_view source, std::size_t line) {
  Location where;
  where.source = std::string(source);
  where.line = static_cast<std::int64_t>(line);
  return where;
}

}  // namespace

std::string ConceptMapUrl(const std::string& name) {
  return "urn:kakehashi:conceptmap:" + name;
}

TerminologyContent CodeTable::ToContent() const {
  TerminologyContent out;
  std::string map = ConceptMapUrl(name);
  for (const TableRow& row : rows) {
    if (row.target_system.empty()) {
      Concept c;
      c.system = row.source_system;
      c.code = row.source_code;
      c.display = row.display;
      c.source = "builtin:" + name;
      out.concepts.push_back(std::move(c));
      continue;
    }
    Mapping m;
    m.map = map;
    m.source_system = row.source_system;
    m.source_code = row.source_code;
    m.target_system = row.target_system;
    m.target_code = row.target_code;
    m.target_display = row.display;
    m.version = row.version;
    m.comment = row.comment;
    m.source = "builtin:" + name;
    out.mappings.push_back(std::move(m));
    // Both ends become known codes; the target display comes from the table.
    Concept target;
    target.system = row.target_system;
    target.code = row.target_code;
    target.display = row.display;
    target.source = m.source;
    out.concepts.push_back(std::move(target));
    Concept src;
    src.system = row.source_system;
    src.code = row.source_code;
    // Tables whose codes carry over unchanged (v2 0078 -> v3 interpretation, 0162 -> route-codes)
    // give the source code the same display; other source codes get theirs from concept rows.
    if (row.source_code == row.target_code) src.display = row.display;
    src.source = m.source;
    out.concepts.push_back(std::move(src));
  }
  return out;
}

Result<CodeTable> ParseCodeTable(std::string_view name, std::string_view text,
                                 const CodeSystemRegistry& registry, IssueSink& issues,
                                 std::string_view source) {
  CodeTable table;
  table.name = std::string(name);
  if (source.empty()) source = name;
  bool failed = false;
  bool header_seen = false;
  std::set<std::tuple<std::string, std::string, std::string, std::string>> keys;
  std::size_t line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    auto fields = SplitTabs(line);
    if (!header_seen) {
      header_seen = true;
      if (!std::equal(fields.begin(), fields.end(), std::begin(kHeader), std::end(kHeader))) {
        issues.Error("terminology.table.columns", At(source, line_no),
                     "the header must be: source_system source_code target_system target_code "
                     "display version comment (tab-separated)");
        return errc::kTableSyntax;
      }
      continue;
    }
    if (fields.size() != std::size(kHeader)) {
      issues.Error("terminology.table.columns", At(source, line_no),
                   "a row must have exactly 7 tab-separated fields");
      failed = true;
      continue;
    }
    TableRow row;
    row.line = line_no;
    row.source_code = std::string(fields[1]);
    row.target_code = std::string(fields[3]);
    row.display = std::string(fields[4]);
    row.version = std::string(fields[5]);
    row.comment = std::string(fields[6]);
    // Registered systems, HL7 v2 tables (HL7nnnn) and local 99xxx names; nothing else.
    NormalizedSystem src = registry.Normalize(fields[0]);
    if (src.match != SystemMatch::kKnown && src.match != SystemMatch::kHl7v2Table &&
        src.match != SystemMatch::kLocal) {
      issues.Error("terminology.table.unknown_system", At(source, line_no),
                   "source_system is not a known code system spelling");
      failed = true;
      continue;
    }
    row.source_system = src.canonical;
    if (!fields[2].empty()) {
      NormalizedSystem dst = registry.Normalize(fields[2]);
      if (dst.match != SystemMatch::kKnown && dst.match != SystemMatch::kHl7v2Table &&
          dst.match != SystemMatch::kLocal) {
        issues.Error("terminology.table.unknown_system", At(source, line_no),
                     "target_system is not a known code system spelling");
        failed = true;
        continue;
      }
      row.target_system = dst.canonical;
    }
    if (row.source_code.empty() || row.target_system.empty() != row.target_code.empty()) {
      issues.Error("terminology.table.missing_code", At(source, line_no),
                   "source_code is required; target_system and target_code go together");
      failed = true;
      continue;
    }
    if (!row.version.empty() && !ProfileSetFromString(row.version)) {
      issues.Error("terminology.table.bad_version", At(source, line_no),
                   "version must be empty or jp-core-1.1.2, jp-core-1.2.0, jp-clins, cda");
      failed = true;
      continue;
    }
    if (!keys.emplace(row.source_system, row.source_code, row.target_system, row.version).second) {
      issues.Error("terminology.table.duplicate_key", At(source, line_no),
                   "(source_system, source_code, target_system, version) repeats an earlier row");
      failed = true;
      continue;
    }
    table.rows.push_back(std::move(row));
  }
  if (!header_seen) {
    issues.Error("terminology.table.columns", At(source, 1), "the table has no header line");
    return errc::kTableSyntax;
  }
  if (failed) return errc::kTableSyntax;
  return table;
}

Result<std::vector<CodeTable>> LoadCodeTables(const CodeSystemRegistry& registry,
                                              const std::filesystem::path& site_dir,
                                              IssueSink& issues) {
  // name -> (text, source label); site files replace built-in ones with the same name.
  std::map<std::string, std::pair<std::string, std::string>> files;
  for (const EmbeddedFile& f : BuiltinTableFiles()) {
    files[std::string(f.name)] = {std::string(f.text), "terminology/tables/" + std::string(f.name)};
  }
  if (!site_dir.empty()) {
    std::error_code ec;
    std::filesystem::directory_iterator it(site_dir, ec);
    if (ec) return errc::kIoError;
    for (const auto& entry : it) {
      if (!entry.is_regular_file() || entry.path().extension() != ".tsv") continue;
      std::ifstream in(entry.path(), std::ios::binary);
      if (!in) return errc::kIoError;
      std::ostringstream ss;
      ss << in.rdbuf();
      files[entry.path().filename().string()] = {ss.str(), entry.path().string()};
    }
  }
  std::vector<CodeTable> out;
  bool failed = false;
  for (const auto& [file, content] : files) {
    std::string stem = file.substr(0, file.size() - 4);
    auto table = ParseCodeTable(stem, content.first, registry, issues, content.second);
    if (!table) {
      failed = true;
      continue;
    }
    out.push_back(std::move(*table));
  }
  if (failed) return errc::kTableSyntax;
  return out;
}

}  // namespace kakehashi::terminology
