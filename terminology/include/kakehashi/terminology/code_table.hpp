// Code tables as data (STYLE.md "Code maps are TSV"): terminology/tables/<name>.tsv, editable
// without C++ and diffable by row. Columns (tab-separated, header line required):
//
//   source_system  source_code  target_system  target_code  display  version  comment
//
// - A row with target_system and target_code is a mapping (ConceptMap element); `display` is the
//   target concept's display, and the target concept becomes known with it.
// - A row with empty target_system and target_code defines a concept of source_system with
//   `display` (CodeSystem content, e.g. the JP Core HL70241 codes).
// - Systems may be written in any spelling the registry knows; they are stored canonical.
//   Accepted: registered systems, "HL7nnnn" v2 tables and local "99xxx" names (Normalize()).
//   Unknown systems are errors (the table test rejects them), so are duplicate keys
//   (source_system, source_code, target_system, version).
// - `version` is "" (every profile set) or a ProfileSet name ("jp-core-1.1.2").
// - Blank lines and lines starting with '#' are comments. Fields may not contain tabs.
//
// Built-in tables are compiled into the library (BuiltinTableFiles()); a site override directory
// shadows them file by file (same file name wins) and may add new files.
#pragma once

#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/common/result.hpp"
#include "kakehashi/terminology/code_systems.hpp"
#include "kakehashi/terminology/concepts.hpp"

#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::terminology {

struct TableRow {
  std::string source_system;  // canonical
  std::string source_code;
  std::string target_system;  // canonical, "" for a concept row
  std::string target_code;
  std::string display;
  std::string version;
  std::string comment;
  std::size_t line = 0;  // 1-based line in the file
};

struct CodeTable {
  std::string name;  // file stem: "v2-0001-administrative-gender"
  std::vector<TableRow> rows;

  // Concepts (concept rows + mapping targets) and mappings (map = ConceptMapUrl(name)).
  TerminologyContent ToContent() const;
};

// Parses one table. Every problem is reported to `issues` as an error with code
// "terminology.table.columns" / ".duplicate_key" / ".unknown_system" / ".bad_version" /
// ".missing_code" at "<source> line N"; the result is errc::kTableSyntax when any was reported.
Result<CodeTable> ParseCodeTable(std::string_view name, std::string_view text,
                                 const CodeSystemRegistry& registry, IssueSink& issues,
                                 std::string_view source = {});

struct EmbeddedFile {
  std::string_view name;  // "v2-0001-administrative-gender.tsv"
  std::string_view text;
};
// The files of terminology/tables/ compiled into this build, in name order.
std::span<const EmbeddedFile> BuiltinTableFiles();

// Built-in tables with `site_dir` (may be empty) on top: a site file shadows the built-in file of
// the same name; other *.tsv files of the site directory are added. errc::kTableSyntax when any
// table is malformed (issues say where); errc::kIoError when `site_dir` is given but unreadable.
Result<std::vector<CodeTable>> LoadCodeTables(const CodeSystemRegistry& registry,
                                              const std::filesystem::path& site_dir,
                                              IssueSink& issues);

}  // namespace kakehashi::terminology
