#include "kakehashi/mapping/rule_set.hpp"

#include "kakehashi/mapping/errc.hpp"
#include "kakehashi/mapping/rule_json.hpp"
#include "terminology_tables.hpp"

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <system_error>

namespace kakehashi::mapping {
namespace fs = std::filesystem;
namespace {

bool ReadFile(const fs::path& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

std::vector<std::string> SplitTabs(std::string_view line) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    std::size_t pos = line.find('\t', start);
    out.emplace_back(line.substr(start, pos == std::string_view::npos ? pos : pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return out;
}

// Loads the files of one folder of `dir` into `into` (later calls shadow earlier ones by name).
Result<void> LoadJsonFolder(const fs::path& dir,
                            std::map<std::string, fhir::Node, std::less<>>& into,
                            std::string* detail) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::string text, error;
    fhir::Node node;
    if (!ReadFile(file, text) || !ParseRuleJson(text, node, &error) || !node.IsObject()) {
      if (detail != nullptr) {
        *detail = file.string() + ": " + (error.empty() ? "not a JSON object" : error);
      }
      return make_error_code(errc::kRuleSyntax);
    }
    into[file.stem().string()] = std::move(node);
  }
  return {};
}

Result<void> LoadTables(const fs::path& dir,
                        std::map<std::string, std::vector<TableRow>, std::less<>>& into,
                        std::string* detail) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.path().extension() == ".tsv") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    std::string text;
    if (!ReadFile(file, text)) {
      if (detail != nullptr) *detail = file.string() + ": cannot be read";
      return make_error_code(errc::kRuleSyntax);
    }
    std::vector<TableRow> rows;
    std::istringstream in(text);
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      auto cols = SplitTabs(line);
      if (cols.size() < 4) {
        if (detail != nullptr) {
          *detail = file.string() + ": line " + std::to_string(line_no) +
                    ": expected at least 4 tab-separated columns";
        }
        return make_error_code(errc::kRuleSyntax);
      }
      if (cols[0] == "source_system") continue;  // header
      cols.resize(7);
      rows.push_back({cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]});
    }
    into[file.stem().string()] = std::move(rows);
  }
  return {};
}

}  // namespace

fs::path RuleSet::BuiltinDir() {
  if (const char* env = std::getenv("KAKEHASHI_RULES_DIR"); env != nullptr && *env != '\0') {
    return env;
  }
  return KAKEHASHI_RULES_DIR;
}

Result<RuleSet> RuleSet::Load(const fs::path& builtin, const fs::path& site_override,
                              std::string* detail) {
  std::error_code ec;
  if (!fs::is_directory(builtin, ec)) {
    if (detail != nullptr) *detail = builtin.string();
    return make_error_code(errc::kRulesNotFound);
  }
  if (!site_override.empty() && !fs::is_directory(site_override, ec)) {
    if (detail != nullptr) *detail = site_override.string();
    return make_error_code(errc::kRulesNotFound);
  }
  RuleSet set;
  // Code tables: terminology/tables first (the one source of truth), rule directories on top.
  std::map<std::string, std::vector<TableRow>, std::less<>> tables;
  AddTerminologyTables(tables);
  for (const fs::path& dir : {builtin, site_override}) {
    if (dir.empty()) continue;
    KAKEHASHI_TRY_VOID(LoadJsonFolder(dir / "message", set.messages_, detail));
    KAKEHASHI_TRY_VOID(LoadJsonFolder(dir / "resource", set.resources_, detail));
    KAKEHASHI_TRY_VOID(LoadJsonFolder(dir / "datatype", set.datatypes_, detail));
    KAKEHASHI_TRY_VOID(LoadTables(dir / "tables", tables, detail));
  }
  for (auto& [name, rows] : tables) {
    Table& table = set.tables_[name];
    table.rows = std::move(rows);
    for (std::size_t i = 0; i < table.rows.size(); ++i) {
      table.by_code[table.rows[i].source_code].push_back(static_cast<std::uint32_t>(i));
    }
  }
  // Every message rule must name resources that exist.
  for (const auto& [name, message] : set.messages_) {
    const fhir::Node* list = message.Find("resources");
    if (list == nullptr || !list->IsArray()) {
      if (detail != nullptr) *detail = "message/" + name + ".json: \"resources\" must be an array";
      return make_error_code(errc::kRuleInvalid);
    }
    for (const auto& item : list->Items()) {
      const fhir::Node* res = item.Find("resource");
      if (res == nullptr || set.Resource(res->Text()) == nullptr) {
        if (detail != nullptr) {
          *detail = "message/" + name + ".json: unknown resource rule " +
                    (res != nullptr ? std::string(res->Text()) : std::string("(none)"));
        }
        return make_error_code(errc::kRuleInvalid);
      }
    }
  }
  return set;
}

const fhir::Node* RuleSet::Message(std::string_view data_type) const {
  auto it = messages_.find(data_type);
  return it == messages_.end() ? nullptr : &it->second;
}
const fhir::Node* RuleSet::Resource(std::string_view name) const {
  auto it = resources_.find(name);
  return it == resources_.end() ? nullptr : &it->second;
}
const fhir::Node* RuleSet::Datatype(std::string_view name) const {
  auto it = datatypes_.find(name);
  return it == datatypes_.end() ? nullptr : &it->second;
}

std::string RuleSet::DataTypeForMessage(std::string_view msh9) const {
  for (const auto& [name, message] : messages_) {
    if (const fhir::Node* list = message.Find("messages"); list != nullptr) {
      for (const auto& m : list->Items()) {
        if (m.Text() == msh9) return name;
      }
    }
  }
  return {};
}

const TableRow* RuleSet::Lookup(std::string_view table, std::string_view source_system,
                                std::string_view code, std::string_view version) const {
  auto it = tables_.find(table);
  if (it == tables_.end()) return nullptr;
  auto rows = it->second.by_code.find(code);
  if (rows == it->second.by_code.end()) return nullptr;
  for (const std::uint32_t i : rows->second) {
    const TableRow& row = it->second.rows[i];
    if (!row.source_system.empty() && row.source_system != "*" && !source_system.empty() &&
        row.source_system != source_system) {
      continue;
    }
    if (!row.version.empty() && row.version != version) continue;
    return &row;
  }
  return nullptr;
}

bool RuleSet::HasTable(std::string_view table) const {
  return tables_.count(table) != 0;
}

std::vector<std::string> RuleSet::MessageTypes() const {
  std::vector<std::string> out;
  for (const auto& [name, message] : messages_) out.push_back(name);
  return out;
}

}  // namespace kakehashi::mapping
