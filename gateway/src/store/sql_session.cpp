// Search-to-SQL translation. Every index table holds (type, id, param, …) rows for the *current*
// version of each resource; predicates are IN sub-queries over them so several values of one
// parameter never multiply result rows. All user values are bound parameters, never spliced.
#include "store/sql_session.hpp"

#include "store/reindex_extract.hpp"

#include "search_params.hpp"
#include "text_search.hpp"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <set>
#include <utility>

namespace kakehashi::gateway::store::detail {

bool HasDrivingIn(const Conjunction& where);  // (below)

namespace {

std::int64_t ToInt(const std::string& s) {
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

ResourceRow RowFrom(std::vector<std::string>& cols, std::size_t at = 0) {
  ResourceRow row;
  row.type = std::move(cols[at]);
  row.id = std::move(cols[at + 1]);
  row.version = ToInt(cols[at + 2]);
  row.last_updated_us = ToInt(cols[at + 3]);
  row.deleted = cols[at + 4] == "1" || cols[at + 4] == "t";
  row.json = std::move(cols[at + 5]);
  return row;
}

constexpr std::string_view kCols = "r.type, r.id, r.version, r.last_updated, r.deleted, r.json";

// history.method (schema 10): the interaction's HTTP method; NULL (read as "") or '' unknown.
std::string_view MethodText(WriteMethod method) {
  switch (method) {
    case WriteMethod::kPost: return "POST";
    case WriteMethod::kPut: return "PUT";
    case WriteMethod::kPatch: return "PATCH";
    case WriteMethod::kDelete: return "DELETE";
    case WriteMethod::kUnknown: break;
  }
  return "";
}

WriteMethod MethodFrom(std::string_view text) {
  for (WriteMethod m :
       {WriteMethod::kPost, WriteMethod::kPut, WriteMethod::kPatch, WriteMethod::kDelete}) {
    if (text == MethodText(m)) return m;
  }
  return WriteMethod::kUnknown;
}

std::string_view TableFor(Predicate::Kind kind) {
  switch (kind) {
    case Predicate::Kind::kString: return "idx_string";
    case Predicate::Kind::kDate: return "idx_date";
    case Predicate::Kind::kReference: return "idx_ref";
    case Predicate::Kind::kQuantity: return "idx_quantity";
    case Predicate::Kind::kComposite: return "idx_composite";
    default: return "idx_token";
  }
}

// Matches the index rows (alias `x`, any idx_* table) of search parameter `param` of `type`:
// "x.pid = ?" with the parameter's key (search_keys), or for a parameter stored as the union or
// restriction of others (SearchParamRegistry::IndexedAs) "x.pid IN (?, …)" (combo-code: the code
// and component-code rows) and "x.target_type = ?" (patient: the subject rows with target
// Patient). Without a type (compartment searches) the keys of the code in every type that has
// it (as written, or as derived there).
void AppendParamMatch(const std::string& x, std::string_view type, const std::string& param,
                      const ParamKeys& keys, std::string& sql, std::vector<Param>& params) {
  const auto& registry = gateway::detail::SearchParamRegistry::Instance();
  auto pid_in = [&](const std::vector<std::int64_t>& pids) {
    sql += x + ".pid";
    if (pids.size() == 1) {
      sql += " = ?";
      params.emplace_back(pids[0]);
      return;
    }
    sql += " IN (";
    for (std::size_t i = 0; i < pids.size(); ++i) {
      sql += i == 0 ? "?" : ", ?";
      params.emplace_back(pids[i]);
    }
    sql += ")";
  };
  auto pids_of = [&](std::string_view t, const gateway::detail::IndexedParam& as) {
    std::vector<std::int64_t> pids;
    for (const std::string& code : as.codes) pids.push_back(keys.Find(t, code));
    return pids;
  };
  if (!type.empty()) {
    const auto as = registry.IndexedAs(type, param);
    sql += "(";
    pid_in(pids_of(type, as));
    if (!as.only_target.empty()) {
      sql += " AND " + x + ".target_type = ?";
      params.emplace_back(std::string(as.only_target));
    }
    sql += ")";
    return;
  }
  std::vector<std::int64_t> plain;
  std::vector<std::pair<std::vector<std::int64_t>, std::string_view>> restricted;
  const std::string_view base = std::string_view(param).substr(0, param.find(':'));
  for (const std::string& t : registry.Types()) {
    if (registry.Find(t, base) == nullptr) continue;
    const auto as = registry.IndexedAs(t, param);
    auto pids = pids_of(t, as);
    if (as.only_target.empty()) {
      plain.insert(plain.end(), pids.begin(), pids.end());
    } else {
      restricted.emplace_back(std::move(pids), as.only_target);
    }
  }
  if (plain.empty() && restricted.empty()) plain.push_back(ParamKeys::kNone);
  sql += "(";
  if (!plain.empty()) pid_in(plain);
  for (const auto& [pids, target] : restricted) {
    if (sql.back() != '(') sql += " OR ";
    sql += "(";
    pid_in(pids);
    sql += " AND " + x + ".target_type = ?)";
    params.emplace_back(std::string(target));
  }
  sql += ")";
}

// "x.pid IN (…)": the reference rows of each (type, parameter) of `links` (Predicate::links),
// through the rows a derived parameter reads (IndexedAs); a parameter restricted to another
// target type than `target_type` cannot link to it and is left out.
void AppendLinksMatch(const std::string& x,
                      const std::vector<std::pair<std::string, std::string>>& links,
                      std::string_view target_type, const ParamKeys& keys, std::string& sql,
                      std::vector<Param>& params) {
  const auto& registry = gateway::detail::SearchParamRegistry::Instance();
  std::vector<std::int64_t> pids;
  for (const auto& [type, param] : links) {
    const auto as = registry.IndexedAs(type, param);
    if (!as.only_target.empty() && as.only_target != target_type) continue;
    for (std::string_view code : as.codes) {
      const std::int64_t pid = keys.Find(type, code);
      if (pid != ParamKeys::kNone) pids.push_back(pid);
    }
  }
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  if (pids.empty()) pids.push_back(ParamKeys::kNone);
  sql += x + ".pid IN (";
  for (std::size_t i = 0; i < pids.size(); ++i) {
    sql += i == 0 ? "?" : ", ?";
    params.emplace_back(pids[i]);
  }
  sql += ")";
}

// Date ranges: target [x.low, x.high] against the search range [?, ?] (R4 §3.1.1.5.6 table).
void AppendRangeCompare(Compare compare, std::string_view lo, std::string_view hi,
                        std::int64_t s_low, std::int64_t s_high, std::string& sql,
                        std::vector<Param>& params) {
  auto col = [&](std::string_view c) { sql.append(c); };
  switch (compare) {
    case Compare::kEq:
    case Compare::kNe:
      sql += compare == Compare::kNe ? "NOT (" : "(";
      col(lo);
      sql += " >= ? AND ";
      col(hi);
      sql += " <= ?)";
      params.emplace_back(s_low);
      params.emplace_back(s_high);
      return;
    case Compare::kGt:
      col(hi);
      sql += " > ?";
      params.emplace_back(s_high);
      return;
    case Compare::kLt:
      col(lo);
      sql += " < ?";
      params.emplace_back(s_low);
      return;
    case Compare::kGe:
      col(hi);
      sql += " >= ?";
      params.emplace_back(s_low);
      return;
    case Compare::kLe:
      col(lo);
      sql += " <= ?";
      params.emplace_back(s_high);
      return;
    case Compare::kSa:
      col(lo);
      sql += " > ?";
      params.emplace_back(s_high);
      return;
    case Compare::kEb:
      col(hi);
      sql += " < ?";
      params.emplace_back(s_low);
      return;
    case Compare::kAp:  // the handler already widened the range by the approximation margin
      sql += "(";
      col(lo);
      sql += " <= ? AND ";
      col(hi);
      sql += " >= ?)";
      params.emplace_back(s_high);
      params.emplace_back(s_low);
      return;
  }
}

// The stored URIs that `uri` is below (R4 search.html#uri, :above): itself, and its prefixes
// ending at each '/' after the scheme's authority ("http://a/b/c": "http://a/b/",
// "http://a/b", "http://a/", "http://a"), with and without that '/'.
std::vector<std::string> UriAncestors(const std::string& uri) {
  std::vector<std::string> out{uri};
  std::size_t start = 0;
  if (auto scheme = uri.find("://"); scheme != std::string::npos) {
    start = uri.find('/', scheme + 3);
    if (start == std::string::npos) return out;
  }
  for (std::size_t i = uri.size(); i-- > start;) {
    if (uri[i] != '/') continue;
    if (i + 1 < uri.size()) out.push_back(uri.substr(0, i + 1));
    if (i > 0) out.push_back(uri.substr(0, i));
  }
  return out;
}

// A quantity predicate's prefix and number against column `v` (R4 §3.1.1.5.6; eq, ne and ap use
// the value's implicit range).
void AppendNumberCompare(const Predicate& p, const std::string& v, std::string& sql,
                         std::vector<Param>& params) {
  switch (p.compare) {
    case Compare::kEq:
    case Compare::kAp:
      sql += "(" + v + " >= ? AND " + v + " < ?)";
      params.emplace_back(p.number_low);
      params.emplace_back(p.number_high);
      break;
    case Compare::kNe:
      sql += "NOT (" + v + " >= ? AND " + v + " < ?)";
      params.emplace_back(p.number_low);
      params.emplace_back(p.number_high);
      break;
    case Compare::kGt:
    case Compare::kSa:
      sql += v + " > ?";
      params.emplace_back(p.number);
      break;
    case Compare::kLt:
    case Compare::kEb:
      sql += v + " < ?";
      params.emplace_back(p.number);
      break;
    case Compare::kGe:
      sql += v + " >= ?";
      params.emplace_back(p.number);
      break;
    case Compare::kLe:
      sql += v + " <= ?";
      params.emplace_back(p.number);
      break;
  }
}

// " AND …" conditions of one composite component on its columns of idx_composite (alias x):
// the first component's (system1, code1), the second's (system2, code2, num, low, high).
void AppendComponent(const Predicate& c, const std::string& x, bool first, std::string& sql,
                     std::vector<Param>& params) {
  const std::string system = x + (first ? ".system1" : ".system2");
  const std::string code = x + (first ? ".code1" : ".code2");
  if (!first && (c.kind == Predicate::Kind::kToken || c.kind == Predicate::Kind::kReference ||
                 c.kind == Predicate::Kind::kString)) {
    // What such rows hold in the key columns before code2 (SchemaV6): keeps the key usable.
    sql += " AND " + x + ".num = 0 AND " + x + ".low = 0 AND " + x + ".high = 0";
  } else if (!first && c.kind == Predicate::Kind::kDate) {
    sql += " AND " + x + ".num = 0";
  }
  switch (c.kind) {
    case Predicate::Kind::kToken:
      if (c.system) {
        sql += " AND " + system + " = ?";
        params.emplace_back(*c.system);
      }
      if (!c.value.empty()) {
        sql += " AND " + code + " = ?";
        params.emplace_back(c.value);
      }
      return;
    case Predicate::Kind::kReference:
      sql += " AND " + code + " = ?";
      params.emplace_back(c.value);
      if (!c.target_type.empty()) {
        sql += " AND " + system + " = ?";
        params.emplace_back(c.target_type);
      }
      return;
    case Predicate::Kind::kString:  // the default string match: starts with (a byte range)
      sql += " AND " + code + " >= ? AND " + code + " < ?";
      params.emplace_back(c.value);
      params.emplace_back(c.value + "\xF4\x8F\xBF\xBF");
      return;
    case Predicate::Kind::kQuantity:
      sql += " AND ";
      AppendNumberCompare(c, x + ".num", sql, params);
      if (c.system && !c.system->empty()) {
        sql += " AND " + system + " = ?";
        params.emplace_back(*c.system);
      }
      if (!c.target_type.empty()) {  // unit code
        sql += " AND " + code + " = ?";
        params.emplace_back(c.target_type);
      }
      return;
    case Predicate::Kind::kDate:
      sql += " AND ";
      AppendRangeCompare(c.compare, x + ".low", x + ".high", c.low_us, c.high_us, sql, params);
      return;
    default: sql += " AND 1 = 0"; return;  // not a component kind (BuildSearch never makes one)
  }
}

// "%term%" for LIKE with '\\' as the escape character.
std::string ContainsPattern(std::string_view term) {
  std::string pattern = "%";
  for (char c : term) {
    if (c == '%' || c == '_' || c == '\\') pattern += '\\';
    pattern += c;
  }
  pattern += '%';
  return pattern;
}

// The longest part of `term` without LIKE's wildcard characters, for SQLite's FTS5 LIKE (which
// takes no ESCAPE clause): a trigram probe when it has 3 or more code points, else none.
std::string_view FtsProbe(std::string_view term) {
  std::string_view best;
  std::size_t start = 0;
  for (std::size_t i = 0; i <= term.size(); ++i) {
    if (i == term.size() || term[i] == '%' || term[i] == '_') {
      if (i - start > best.size()) best = term.substr(start, i - start);
      start = i + 1;
    }
  }
  return gateway::detail::CodePoints(best) >= 3 ? best : std::string_view();
}

// SQLite: "SELECT rowid FROM idx_text_fts WHERE <column> LIKE ? AND …", the candidates of kText
// predicate p by the trigram index, with a LIKE per term that has a probe (FtsProbe); false (and
// nothing written) when no term has one.
bool AppendFtsMatch(const Predicate& p, std::string& sql, std::vector<Param>& params) {
  const std::string column = p.param == "_text" ? "narrative" : "content";
  bool any = false;
  for (const std::string& term : p.terms) {
    const std::string_view probe = FtsProbe(term);
    if (probe.empty()) continue;
    sql += any ? " AND " : "SELECT rowid FROM idx_text_fts WHERE ";
    any = true;
    sql += column + " LIKE ?";
    std::string pattern = "%";
    pattern += probe;
    pattern += '%';
    params.emplace_back(std::move(pattern));
  }
  return any;
}

bool HasFtsProbe(const Predicate& p) {
  return p.kind == Predicate::Kind::kText && !p.probe &&
         std::any_of(p.terms.begin(), p.terms.end(),
                     [](const auto& t) { return !FtsProbe(t).empty(); });
}

// `_text` / `_content` (decision 0041): every term occurs in the resource's idx_text column.
// SQLite: terms of 3 or more characters (without LIKE wildcards) select candidates through the
// trigram index idx_text_fts (its LIKE is a substring match that reads the FTS index); each
// term is then checked on the candidate's own row (instr: bytes, exact). Terms shorter than 3
// characters cannot be found through trigrams: with no longer term the check runs for every
// resource the rest of the query leaves; so does a term marked `probe` (common in the store:
// SqlSession::Search, CommonTextProbes). PostgreSQL: LIKE on idx_text, which the planner may
// answer from the pg_trgm GIN indexes when they exist (it rechecks every candidate).
void AppendText(const Predicate& p, const std::string& a, const std::string& x, Dialect dialect,
                std::string& sql, std::vector<Param>& params) {
  const std::string column = p.param == "_text" ? "narrative" : "content";
  if (p.terms.empty()) {
    sql += "1 = 0";
    return;
  }
  if (dialect == Dialect::kPostgres) {
    sql += a + ".rk IN (SELECT " + x + ".rk FROM idx_text " + x + " WHERE ";
    for (std::size_t i = 0; i < p.terms.size(); ++i) {
      if (i > 0) sql += " AND ";
      sql += x + "." + column + " LIKE ? ESCAPE '\\'";
      params.emplace_back(ContainsPattern(p.terms[i]));
    }
    sql += ")";
    return;
  }
  sql += "(";
  if (HasFtsProbe(p) && p.candidates) {
    // The candidates CommonTextProbes read (decision 0042): not the trigram index again.
    if (p.candidates->empty()) {
      sql += "1 = 0)";
      return;
    }
    sql += a + ".rk IN (";
    for (std::size_t i = 0; i < p.candidates->size(); ++i) {
      sql += i == 0 ? "?" : ", ?";
      params.emplace_back((*p.candidates)[i]);
    }
    sql += ") AND ";
  } else if (HasFtsProbe(p)) {
    sql += a + ".rk IN (";
    AppendFtsMatch(p, sql, params);
    sql += ") AND ";
  }
  sql += "EXISTS (SELECT 1 FROM idx_text " + x + " WHERE " + x + ".rk = " + a + ".rk";
  for (const std::string& term : p.terms) {
    sql += " AND instr(" + x + "." + column + ", ?) > 0";
    params.emplace_back(term);
  }
  sql += "))";
}

void AppendPredicate(const Predicate& p, std::string_view alias, std::string_view type,
                     Dialect dialect, const ParamKeys& keys, std::string& sql,
                     std::vector<Param>& params, int depth, bool correlated) {
  const std::string a(alias);
  std::string x = std::to_string(depth);
  x.insert(x.begin(), 'x');  // not "x" + …: GCC 12 -Wrestrict false positive
  // "r.rk IN (SELECT x.rk …)" rather than a correlated EXISTS: the planner can then drive the
  // query from the index table (one identifier among 100,000 patients is an index probe, not a
  // scan); the parameter key (which implies the type) is part of the probe.
  auto in_head = [&](std::string_view table, std::string_view join = {}) {
    sql += a + ".rk IN (SELECT " + x + ".rk FROM ";
    sql += table;
    sql += " " + x;
    sql += join;
    sql += " WHERE ";
    AppendParamMatch(x, type, p.param, keys, sql, params);
  };
  // Correlated form: probe the resource's own index rows (idx_*_by_resource) while scanning
  // resources in (lastUpdated, id) order; cheap when many resources match.
  auto exists_head = [&](std::string_view table) {
    if (!correlated && !p.probe) {
      in_head(table);
      return;
    }
    // INDEXED BY: otherwise SQLite probes the value index and re-reads every matching row of
    // the parameter for each resource scanned.
    sql += "EXISTS (SELECT 1 FROM ";
    sql += table;
    sql += " " + x;
    if (dialect == Dialect::kSqlite) {
      sql += " INDEXED BY ";
      sql += table;
      sql += "_by_resource";
    }
    sql += " WHERE " + x + ".rk = " + a + ".rk AND ";
    AppendParamMatch(x, type, p.param, keys, sql, params);
  };
  switch (p.kind) {
    case Predicate::Kind::kId:
      if (type.empty()) {
        sql += a + ".id = ?";
        params.emplace_back(p.value);
        return;
      }
      // Through the (type, id) index even where the query keeps SQLite off the type's own
      // index ("+r.type", Search and Count): "r.id = ?" alone would scan every resource.
      sql += a + ".rk IN (SELECT i" + x + ".rk FROM resources i" + x + " WHERE i" + x +
             ".type = ? AND i" + x + ".id = ?)";
      params.emplace_back(std::string(type));
      params.emplace_back(p.value);
      return;
    case Predicate::Kind::kLastUpdated:
      AppendRangeCompare(p.compare, a + ".last_updated", a + ".last_updated", p.low_us, p.high_us,
                         sql, params);
      return;
    case Predicate::Kind::kToken:
      if (p.negate) sql += "NOT ";
      exists_head("idx_token");
      if (p.system) {
        sql += " AND " + x + ".system = ?";
        params.emplace_back(*p.system);
      }
      if (p.uri_match == Predicate::UriMatch::kBelow) {
        // The value, or what starts with it and a '/' (or with it when it ends in '/'): a
        // byte range, so "http://a/b" finds "http://a/b/c" and not "http://a/bc" ('0' follows
        // '/' in ASCII).
        std::string below = p.value;
        if (!below.ends_with('/')) below += '/';
        std::string end = below;
        end.back() = '0';
        sql += " AND (" + x + ".code = ? OR (" + x + ".code >= ? AND " + x + ".code < ?))";
        params.emplace_back(p.value);
        params.emplace_back(std::move(below));
        params.emplace_back(std::move(end));
      } else if (p.uri_match == Predicate::UriMatch::kAbove) {
        const std::vector<std::string> above = UriAncestors(p.value);
        sql += " AND " + x + ".code IN (";
        for (std::size_t i = 0; i < above.size(); ++i) {
          sql += i == 0 ? "?" : ", ?";
          params.emplace_back(above[i]);
        }
        sql += ")";
      } else if (!p.value.empty()) {
        sql += " AND " + x + ".code = ?";
        params.emplace_back(p.value);
      }
      sql += ")";
      return;
    case Predicate::Kind::kString: {
      exists_head("idx_string");
      switch (p.string_match) {
        case Predicate::StringMatch::kExact:
          sql += " AND " + x + ".value = ?";
          params.emplace_back(p.value);
          break;
        case Predicate::StringMatch::kPrefix:
          // A byte range instead of LIKE so the (type, param, value) index is used; values are
          // UTF-8 and compared bytewise (COLLATE "C" on PostgreSQL, BINARY on SQLite).
          sql += " AND " + x + ".value >= ? AND " + x + ".value < ?";
          params.emplace_back(p.value);
          params.emplace_back(p.value + "\xF4\x8F\xBF\xBF");
          break;
        case Predicate::StringMatch::kContains:
          sql += " AND " + x + ".value LIKE ? ESCAPE '\\'";
          params.emplace_back(ContainsPattern(p.value));
          break;
      }
      sql += ")";
      return;
    }
    case Predicate::Kind::kDate:
      exists_head("idx_date");
      sql += " AND ";
      AppendRangeCompare(p.compare, x + ".low", x + ".high", p.low_us, p.high_us, sql, params);
      sql += ")";
      return;
    case Predicate::Kind::kQuantity: {
      exists_head("idx_quantity");
      sql += " AND ";
      AppendNumberCompare(p, x + ".value", sql, params);
      if (p.system && !p.system->empty()) {
        sql += " AND " + x + ".system = ?";
        params.emplace_back(*p.system);
      }
      if (!p.target_type.empty()) {  // unit code
        sql += " AND " + x + ".code = ?";
        params.emplace_back(p.target_type);
      }
      sql += ")";
      return;
    }
    case Predicate::Kind::kReference:
      if (p.chain && p.reverse) {
        // _has: the ids that the referencing resources' rows of `param` point at, as resources
        // of this type (their rk through the (type, id) key, as kId does). The referencing
        // resources' own criteria are on h (a live resource: index rows are of current
        // versions only; deleted = 0 says so for criteria that read resources alone).
        std::string h = std::to_string(depth);
        h.insert(h.begin(), 'h');
        std::string t = std::to_string(depth);
        t.insert(t.begin(), 't');
        sql += a + ".rk IN (SELECT " + t + ".rk FROM resources " + t + " WHERE " + t +
               ".type = ? AND " + t + ".id IN (SELECT " + x + ".target_id FROM idx_ref " + x +
               " JOIN resources " + h + " ON " + h + ".rk = " + x + ".rk WHERE ";
        params.emplace_back(p.target_type);
        AppendParamMatch(x, p.chain_type, p.param, keys, sql, params);
        sql += " AND " + x + ".target_type = ? AND " + h + ".deleted = 0";
        params.emplace_back(p.target_type);
        if (!p.chain->empty()) {
          sql += " AND ";
          AppendConjunction(*p.chain, h, p.chain_type, dialect, keys, sql, params, depth + 1,
                            false);
        }
        sql += "))";
        return;
      }
      if (p.chain && p.probe) {
        // A common chain (decision 0042: PlanChains counted its criteria or its matches up to
        // the threshold): checked per resource the query reads in result order, through its
        // own reference rows (x, by resource) to the referenced resource (c, by type and id)
        // and that one's own index rows (its criteria correlated too). Reading every match
        // first would cost them all for a page of a few. PostgreSQL: OFFSET 0 keeps the
        // planner from turning the EXISTS into a join of every match (a sub-query with an
        // OFFSET is not pulled up), so it stays a per-row check with an early stop at LIMIT.
        std::string c = std::to_string(depth);
        c.insert(c.begin(), 'c');
        sql += "EXISTS (SELECT 1 FROM idx_ref " + x;
        if (dialect == Dialect::kSqlite) sql += " INDEXED BY idx_ref_by_resource";
        sql += " CROSS JOIN resources " + c + " WHERE " + x + ".rk = " + a + ".rk AND ";
        AppendParamMatch(x, type, p.param, keys, sql, params);
        sql += " AND " + x + ".target_type = ? AND " + c + ".type = ? AND " + c + ".id = " + x +
               ".target_id AND " + c + ".deleted = 0";
        params.emplace_back(p.chain_type);
        params.emplace_back(p.chain_type);
        if (!p.chain->empty()) {
          sql += " AND ";
          AppendConjunction(*p.chain, c, p.chain_type, dialect, keys, sql, params, depth + 1, true);
        }
        sql += dialect == Dialect::kPostgres ? " OFFSET 0)" : ")";
        return;
      }
      if (p.chain) {
        std::string c = std::to_string(depth);
        c.insert(c.begin(), 'c');
        // The referenced resources as an IN list of ids (then probed in the reference index by
        // target): with a selective chain ("subject:Patient.identifier=…") SQLite must drive
        // from the chain's own index rows (c.rk IN …), so "+c.type" keeps it off the
        // (type, last_updated) index, which would scan every resource of the type.
        // The referenced ids are materialised whole (no order, no limit): whenever the chain's
        // criterion is an index probe (HasDrivingIn: a chain again, a string prefix, ...),
        // reading it beats scanning the type (decision 0044: chains of several links).
        const bool drive = dialect == Dialect::kSqlite && HasDrivingIn(*p.chain);
        in_head("idx_ref");
        sql += " AND " + x + ".target_type = ? AND " + x + ".target_id IN (SELECT " + c +
               ".id FROM resources " + c + " WHERE " + (drive ? "+" : "") + c + ".type = ? AND " +
               c + ".deleted = 0";
        params.emplace_back(p.chain_type);
        params.emplace_back(p.chain_type);
        if (!p.chain->empty()) {
          sql += " AND ";
          AppendConjunction(*p.chain, c, p.chain_type, dialect, keys, sql, params, depth + 1,
                            false);
        }
        sql += "))";
        return;
      }
      if (!p.links.empty()) {
        // A compartment: a reference to the target through one of the links' parameters, the
        // target itself excluded (a Patient linking to itself is that Patient).
        sql += "(" + a + ".rk IN (SELECT " + x + ".rk FROM idx_ref " + x + " WHERE ";
        AppendLinksMatch(x, p.links, p.target_type, keys, sql, params);
        sql += " AND " + x + ".target_id = ? AND " + x + ".target_type = ?) AND NOT (" + a +
               ".type = ? AND " + a + ".id = ?))";
        params.emplace_back(p.value);
        params.emplace_back(p.target_type);
        params.emplace_back(p.target_type);
        params.emplace_back(p.value);
        return;
      }
      exists_head("idx_ref");
      sql += " AND " + x + ".target_id = ?";
      params.emplace_back(p.value);
      if (!p.target_type.empty()) {
        sql += " AND " + x + ".target_type = ?";
        params.emplace_back(p.target_type);
      }
      sql += ")";
      return;
    case Predicate::Kind::kComposite:
      // One stored pair must satisfy both components (the same element's values).
      exists_head("idx_composite");
      if (p.components) {
        for (std::size_t i = 0; i < p.components->size(); ++i) {
          AppendComponent((*p.components)[i], x, i == 0, sql, params);
        }
      }
      sql += ")";
      return;
    case Predicate::Kind::kMissing:
      if (p.missing) sql += "NOT ";
      exists_head(TableFor(p.missing_kind));
      sql += ")";
      return;
    case Predicate::Kind::kText: AppendText(p, a, x, dialect, sql, params); return;
  }
}

}  // namespace

// True when some AND-ed parameter only has alternatives written as "r.rk IN (SELECT …)" over
// index rows (not negated): the count can then be driven from them.
bool HasDrivingIn(const Conjunction& where) {
  for (const auto& any : where) {
    bool all = !any.empty();
    for (const Predicate& p : any) {
      switch (p.kind) {
        case Predicate::Kind::kToken: all = all && !p.negate; break;
        case Predicate::Kind::kMissing: all = all && !p.missing; break;
        case Predicate::Kind::kLastUpdated: all = false; break;
        case Predicate::Kind::kReference:  // a common chain is a per-row check (decision 0042)
          all = all && !(p.chain && p.probe);
          break;
        case Predicate::Kind::kText:  // SQLite: an IN over idx_text_fts with a trigram probe
          all = all && HasFtsProbe(p);
          break;
        default: break;
      }
    }
    if (all) return true;
  }
  return false;
}

bool IsSelective(const Conjunction& where) {
  for (const auto& any : where) {
    bool all = !any.empty();
    for (const Predicate& p : any) {
      // A composite whose first component names a code or a reference target is a token or
      // reference probe too.
      const bool selective =
          p.kind == Predicate::Kind::kId ||
          (p.kind == Predicate::Kind::kToken && !p.negate && !p.value.empty()) ||
          (p.kind == Predicate::Kind::kReference && !p.chain) ||
          // a chain counted under its threshold (PlanChains)
          (p.kind == Predicate::Kind::kReference && p.chain && !p.reverse && p.few) ||
          (p.kind == Predicate::Kind::kReference && p.chain && p.reverse &&
           IsSelective(*p.chain)) ||
          (p.kind == Predicate::Kind::kComposite && p.components && !p.components->empty() &&
           !p.components->front().value.empty()) ||
          // a trigram probe (SQLite idx_text_fts; PostgreSQL decides itself)
          HasFtsProbe(p);
      all = all && selective;
    }
    if (all) return true;
  }
  return false;
}

namespace {

// PostgreSQL: the alternatives of one token parameter (`code=a,b,c`, `code:in=…`: decision 0045
// makes one alternative per code) as one "a.rk IN (SELECT x.rk FROM idx_token x WHERE <key> AND
// x.code IN (…) [AND (x.code, x.system) IN (VALUES …)])" (decision 0042): an index condition
// on idx_token_by_value (pid, code, …) that the planner drives from, where an OR of one IN
// sub-query per code made it scan resources in result order and test each one against them
// all (385 ms for a ValueSet of 19 codes that matched nothing, 100,000 Observations). False,
// writing nothing, unless every alternative is a plain code of the same parameter, all with a
// system or all without.
bool AppendTokenAlternatives(const std::vector<Predicate>& any, std::string_view alias,
                             std::string_view type, const ParamKeys& keys, std::string& sql,
                             std::vector<Param>& params, int depth) {
  if (any.size() < 2) return false;
  const bool systems = any[0].system.has_value();
  for (const Predicate& p : any) {
    if (p.kind != Predicate::Kind::kToken || p.negate || p.probe || p.value.empty() ||
        p.uri_match != Predicate::UriMatch::kExact || p.param != any[0].param ||
        p.system.has_value() != systems) {
      return false;
    }
  }
  std::string x = std::to_string(depth);
  x.insert(x.begin(), 'x');
  sql += std::string(alias) + ".rk IN (SELECT " + x + ".rk FROM idx_token " + x + " WHERE ";
  AppendParamMatch(x, type, any[0].param, keys, sql, params);
  sql += " AND " + x + ".code IN (";
  for (std::size_t i = 0; i < any.size(); ++i) {
    sql += i == 0 ? "?" : ", ?";
    params.emplace_back(any[i].value);
  }
  sql += ")";
  if (systems) {
    sql += " AND (" + x + ".code, " + x + ".system) IN (VALUES ";
    for (std::size_t i = 0; i < any.size(); ++i) {
      sql += i == 0 ? "(?, ?)" : ", (?, ?)";
      params.emplace_back(any[i].value);
      params.emplace_back(*any[i].system);
    }
    sql += ")";
  }
  sql += ")";
  return true;
}

}  // namespace

void AppendConjunction(const Conjunction& where, std::string_view alias, std::string_view type,
                       Dialect dialect, const ParamKeys& keys, std::string& sql,
                       std::vector<Param>& params, int depth, bool correlated) {
  bool first = true;
  for (const auto& any : where) {
    if (any.empty()) continue;
    if (!first) sql += " AND ";
    first = false;
    sql += "(";
    if (dialect == Dialect::kPostgres && !correlated && !type.empty() &&
        AppendTokenAlternatives(any, alias, type, keys, sql, params, depth)) {
      sql += ")";
      continue;
    }
    for (std::size_t i = 0; i < any.size(); ++i) {
      if (i > 0) sql += " OR ";
      AppendPredicate(any[i], alias, type, dialect, keys, sql, params, depth, correlated);
    }
    sql += ")";
  }
  if (first) sql += "1 = 1";
}

std::vector<std::string> SchemaV1(Dialect dialect) {
  const bool pg = dialect == Dialect::kPostgres;
  // PostgreSQL: byte order for text (prefix ranges), identity for the history sequence.
  const std::string text = pg ? "TEXT COLLATE \"C\"" : "TEXT";
  const std::string seq =
      pg ? "seq BIGSERIAL PRIMARY KEY" : "seq INTEGER PRIMARY KEY AUTOINCREMENT";
  const std::string real = pg ? "DOUBLE PRECISION" : "REAL";
  return {
      "CREATE TABLE resources (type " + text + " NOT NULL, id " + text +
          " NOT NULL, version BIGINT NOT NULL, last_updated BIGINT NOT NULL, deleted INTEGER NOT "
          "NULL, json TEXT NOT NULL, PRIMARY KEY (type, id))",
      "CREATE INDEX resources_by_time ON resources (type, last_updated, id)",
      "CREATE TABLE history (" + seq + ", type " + text + " NOT NULL, id " + text +
          " NOT NULL, version BIGINT NOT NULL, last_updated BIGINT NOT NULL, deleted INTEGER NOT "
          "NULL, json TEXT NOT NULL, UNIQUE (type, id, version))",
      "CREATE TABLE idx_token (type " + text + " NOT NULL, id " + text + " NOT NULL, param " +
          text + " NOT NULL, system " + text + " NOT NULL, code " + text + " NOT NULL)",
      "CREATE INDEX idx_token_by_value ON idx_token (type, param, code, system, id)",
      "CREATE INDEX idx_token_by_resource ON idx_token (type, id, param, code, system)",
      "CREATE TABLE idx_string (type " + text + " NOT NULL, id " + text + " NOT NULL, param " +
          text + " NOT NULL, value " + text + " NOT NULL)",
      "CREATE INDEX idx_string_by_value ON idx_string (type, param, value, id)",
      "CREATE INDEX idx_string_by_resource ON idx_string (type, id, param, value)",
      "CREATE TABLE idx_date (type " + text + " NOT NULL, id " + text + " NOT NULL, param " + text +
          " NOT NULL, low BIGINT NOT NULL, high BIGINT NOT NULL)",
      "CREATE INDEX idx_date_by_value ON idx_date (type, param, low, high, id)",
      "CREATE INDEX idx_date_by_resource ON idx_date (type, id, param, low, high)",
      "CREATE TABLE idx_ref (type " + text + " NOT NULL, id " + text + " NOT NULL, param " + text +
          " NOT NULL, target_type " + text + " NOT NULL, target_id " + text + " NOT NULL)",
      "CREATE INDEX idx_ref_by_target ON idx_ref (target_id, target_type, param, type, id)",
      "CREATE INDEX idx_ref_by_resource ON idx_ref (type, id, param, target_id, target_type)",
      "CREATE TABLE idx_quantity (type " + text + " NOT NULL, id " + text + " NOT NULL, param " +
          text + " NOT NULL, value " + real + " NOT NULL, system " + text + " NOT NULL, code " +
          text + " NOT NULL)",
      "CREATE INDEX idx_quantity_by_value ON idx_quantity (type, param, value, id)",
      "CREATE INDEX idx_quantity_by_resource ON idx_quantity (type, id, param, value, system, "
      "code)",
  };
}

std::vector<std::string> SchemaV2(Dialect dialect) {
  const std::string text = dialect == Dialect::kPostgres ? "TEXT COLLATE \"C\"" : "TEXT";
  // substr/length count characters (code points) on both backends, as PrefixOf does.
  std::string numbers = "SELECT 1 AS n";
  for (std::size_t n = 2; n <= kStringPrefixChars; ++n) {
    numbers += " UNION ALL SELECT " + std::to_string(n);
  }
  // SQLite: the by-value key is the table itself (WITHOUT ROWID), one B-tree less per row.
  // Prefixes ending in a space are not stored: a normalised search value never ends in one.
  const bool pg = dialect == Dialect::kPostgres;
  std::vector<std::string> out;
  out.push_back("CREATE TABLE idx_string_prefix (type " + text + " NOT NULL, id " + text +
                " NOT NULL, param " + text + " NOT NULL, prefix " + text +
                " NOT NULL, last_updated BIGINT NOT NULL" +
                (pg ? std::string(")")
                    : std::string(", PRIMARY KEY (type, param, prefix, last_updated, id)) "
                                  "WITHOUT ROWID")));
  if (pg) {
    out.push_back(
        "CREATE INDEX idx_string_prefix_by_value ON idx_string_prefix (type, param, prefix, "
        "last_updated, id)");
  }
  out.push_back("CREATE INDEX idx_string_prefix_by_resource ON idx_string_prefix (type, id)");
  out.push_back(
      "INSERT INTO idx_string_prefix (type, id, param, prefix, last_updated) SELECT DISTINCT "
      "s.type, s.id, s.param, substr(s.value, 1, k.n), r.last_updated FROM idx_string s JOIN "
      "resources r ON r.type = s.type AND r.id = s.id JOIN (" +
      numbers + ") k ON k.n <= length(s.value) AND substr(s.value, k.n, 1) <> ' '");
  return out;
}

std::vector<std::string> SchemaV3(Dialect) {
  using gateway::detail::ParamType;
  const auto& registry = gateway::detail::SearchParamRegistry::Instance();
  std::vector<std::string> out;
  for (const std::string& type : registry.Types()) {
    for (const auto& [code, param] : registry.ForType(type)) {
      if (param.union_of.empty()) continue;
      std::vector<std::string_view> tables;
      switch (param.def->type) {
        case ParamType::kString: tables = {"idx_string", "idx_string_prefix"}; break;
        case ParamType::kToken:
        case ParamType::kUri: tables = {"idx_token"}; break;
        case ParamType::kDate: tables = {"idx_date"}; break;
        case ParamType::kReference: tables = {"idx_ref"}; break;
        case ParamType::kQuantity:
        case ParamType::kNumber: tables = {"idx_quantity"}; break;
        case ParamType::kComposite: break;  // composites were first indexed in version 6
      }
      // Type names and codes come from the generated R4 table ([A-Za-z0-9-]), never from input.
      for (std::string_view table : tables) {
        out.push_back("DELETE FROM " + std::string(table) + " WHERE type = '" + type +
                      "' AND param = '" + code + "'");
      }
    }
  }
  return out;
}

std::vector<std::string> SchemaV4(Dialect dialect) {
  if (dialect == Dialect::kPostgres) return {};
  struct Table {
    std::string_view name;
    std::string_view columns;      // as created by SchemaV1, in order
    std::string_view key;          // the by-value index of SchemaV1 (plus system, code)
    std::string_view by_resource;  // the by-resource index of SchemaV1
  };
  static constexpr Table kTables[] = {
      {"idx_token",
       "type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, system TEXT NOT NULL, code TEXT "
       "NOT NULL",
       "type, param, code, system, id", "type, id, param, code, system"},
      {"idx_string",
       "type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, value TEXT NOT NULL",
       "type, param, value, id", "type, id, param, value"},
      {"idx_date",
       "type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, low BIGINT NOT NULL, high "
       "BIGINT NOT NULL",
       "type, param, low, high, id", "type, id, param, low, high"},
      {"idx_ref",
       "type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, target_type TEXT NOT NULL, "
       "target_id TEXT NOT NULL",
       "target_id, target_type, param, type, id", "type, id, param, target_id, target_type"},
      // Quantities of one value in two units are two rows: system and code are part of the key.
      {"idx_quantity",
       "type TEXT NOT NULL, id TEXT NOT NULL, param TEXT NOT NULL, value REAL NOT NULL, system "
       "TEXT NOT NULL, code TEXT NOT NULL",
       "type, param, value, system, code, id", "type, id, param, value, system, code"},
  };
  std::vector<std::string> out;
  for (const Table& t : kTables) {
    const std::string name(t.name);
    out.push_back("CREATE TABLE " + name + "_v4 (" + std::string(t.columns) + ", PRIMARY KEY (" +
                  std::string(t.key) + ")) WITHOUT ROWID");
    out.push_back("INSERT OR IGNORE INTO " + name + "_v4 SELECT * FROM " + name);
    out.push_back("DROP TABLE " + name);  // and its indexes
    out.push_back("ALTER TABLE " + name + "_v4 RENAME TO " + name);
    out.push_back("CREATE INDEX " + name + "_by_resource ON " + name + " (" +
                  std::string(t.by_resource) + ")");
  }
  return out;
}

std::string SyncParamKeysSql() {
  // Type names and codes come from the generated R4 table ([A-Za-z0-9_-]), never from input.
  // A new pair gets MAX(pid) + its position in this list: unique, gaps are harmless.
  const auto& registry = gateway::detail::SearchParamRegistry::Instance();
  std::string sql = "WITH v (n, t, p) AS (VALUES ";
  std::size_t n = 0;
  for (const std::string& type : registry.Types()) {
    for (const auto& [code, param] : registry.ForType(type)) {
      if (!param.union_of.empty()) continue;  // no rows of its own (SchemaV3)
      // code:exact, code:text, code:identifier, code:of-type
      for (const std::string* c : {&code, &param.variant_code, &param.of_type_code}) {
        if (c->empty()) continue;
        sql += n == 0 ? "(" : ", (";
        sql += std::to_string(++n) + ", '" + type + "', '" + *c + "')";
      }
    }
  }
  sql +=
      ") INSERT INTO search_keys (pid, type, param) SELECT (SELECT COALESCE(MAX(pid), 0) FROM "
      "search_keys) + v.n, v.t, v.p FROM v WHERE NOT EXISTS (SELECT 1 FROM search_keys k WHERE "
      "k.type = v.t AND k.param = v.p)";
  return sql;
}

std::vector<std::string> SchemaV5(Dialect dialect) {
  const bool pg = dialect == Dialect::kPostgres;
  const std::string text = pg ? "TEXT COLLATE \"C\"" : "TEXT";
  const std::string real = pg ? "DOUBLE PRECISION" : "REAL";
  std::vector<std::string> out;
  out.push_back("CREATE TABLE search_keys (pid INTEGER PRIMARY KEY, type " + text +
                " NOT NULL, param " + text + " NOT NULL, UNIQUE (type, param))");
  out.push_back(SyncParamKeysSql());
  if (pg) {
    // Existing rows are numbered by the column's sequence when it is added.
    out.push_back("ALTER TABLE resources ADD COLUMN rk BIGSERIAL");
    out.push_back("CREATE UNIQUE INDEX resources_by_rk ON resources (rk)");
  } else {
    // rk INTEGER PRIMARY KEY: the rowid itself, which VACUUM keeps only when it is declared.
    out.push_back(
        "CREATE TABLE resources_v5 (rk INTEGER PRIMARY KEY, type TEXT NOT NULL, id TEXT NOT "
        "NULL, version BIGINT NOT NULL, last_updated BIGINT NOT NULL, deleted INTEGER NOT NULL, "
        "json TEXT NOT NULL, UNIQUE (type, id))");
    out.push_back(
        "INSERT INTO resources_v5 (rk, type, id, version, last_updated, deleted, json) SELECT "
        "rowid, type, id, version, last_updated, deleted, json FROM resources");
    out.push_back("DROP TABLE resources");
    out.push_back("ALTER TABLE resources_v5 RENAME TO resources");
    out.push_back("CREATE INDEX resources_by_time ON resources (type, last_updated, id)");
  }
  struct Table {
    std::string_view name;
    std::string columns;           // after pid, before rk
    std::string_view select;       // the version 4 columns, in that order
    std::string_view key;          // the by-value key
    std::string_view by_resource;  // the by-resource index
  };
  const Table tables[] = {
      {"idx_token", "system " + text + " NOT NULL, code " + text + " NOT NULL", "x.system, x.code",
       "pid, code, system, rk", "rk, pid, code, system"},
      {"idx_string", "value " + text + " NOT NULL", "x.value", "pid, value, rk", "rk, pid, value"},
      {"idx_date", "low BIGINT NOT NULL, high BIGINT NOT NULL", "x.low, x.high",
       "pid, low, high, rk", "rk, pid, low, high"},
      {"idx_ref", "target_type " + text + " NOT NULL, target_id " + text + " NOT NULL",
       "x.target_type, x.target_id", "target_id, target_type, pid, rk",
       "rk, pid, target_id, target_type"},
      {"idx_quantity",
       "value " + real + " NOT NULL, system " + text + " NOT NULL, code " + text + " NOT NULL",
       "x.value, x.system, x.code", "pid, value, system, code, rk", "rk, pid, value, system, code"},
      // Prefix rows keep the id: a page is read in (last_updated, id) order from this index.
      {"idx_string_prefix",
       "prefix " + text + " NOT NULL, last_updated BIGINT NOT NULL, id " + text + " NOT NULL",
       "x.prefix, x.last_updated, x.id", "pid, prefix, last_updated, id", "rk"},
  };
  for (const Table& t : tables) {
    const std::string name(t.name);
    std::string create =
        "CREATE TABLE " + name + "_v5 (pid INTEGER NOT NULL, " + t.columns + ", rk BIGINT NOT NULL";
    create += pg ? ")" : ", PRIMARY KEY (" + std::string(t.key) + ")) WITHOUT ROWID";
    out.push_back(std::move(create));
    out.push_back(std::string(pg ? "INSERT INTO " : "INSERT OR IGNORE INTO ") + name +
                  "_v5 SELECT k.pid, " + std::string(t.select) + ", r.rk FROM " + name +
                  " x JOIN search_keys k ON k.type = x.type AND k.param = x.param JOIN resources "
                  "r ON r.type = x.type AND r.id = x.id");
    out.push_back("DROP TABLE " + name);  // and its indexes
    out.push_back("ALTER TABLE " + name + "_v5 RENAME TO " + name);
    if (pg) {
      out.push_back("CREATE INDEX " + name + "_by_value ON " + name + " (" + std::string(t.key) +
                    ")");
    }
    out.push_back("CREATE INDEX " + name + "_by_resource ON " + name + " (" +
                  std::string(t.by_resource) + ")");
  }
  return out;
}

std::vector<std::string> SchemaV6(Dialect dialect) {
  const bool pg = dialect == Dialect::kPostgres;
  const std::string text = pg ? "TEXT COLLATE \"C\"" : "TEXT";
  const std::string real = pg ? "DOUBLE PRECISION" : "REAL";
  // Keyed by value as the other index tables (SQLite: the key is the table, WITHOUT ROWID):
  // a search names the parameter and the first component's code (or reference id), then the
  // second component: a quantity's number or a date's range follows in the key (a range scan),
  // a token's or string's code2 after num = low = high = 0, which such a search states
  // (AppendComponent). The systems come last: they rarely tell rows apart, and a key compared
  // through long equal texts first costs every insert.
  const std::string key = "pid, code1, num, low, high, code2, system1, system2, rk";
  std::vector<std::string> out;
  out.push_back("CREATE TABLE idx_composite (pid INTEGER NOT NULL, system1 " + text +
                " NOT NULL, code1 " + text + " NOT NULL, system2 " + text + " NOT NULL, code2 " +
                text + " NOT NULL, num " + real +
                " NOT NULL, low BIGINT NOT NULL, high BIGINT NOT NULL, rk BIGINT NOT NULL" +
                (pg ? ")" : ", PRIMARY KEY (" + key + ")) WITHOUT ROWID"));
  if (pg) out.push_back("CREATE INDEX idx_composite_by_value ON idx_composite (" + key + ")");
  out.push_back("CREATE INDEX idx_composite_by_resource ON idx_composite (rk, pid" +
                std::string(pg ? ", code1, num, low, high, code2, system1, system2)" : ")"));
  return out;
}

std::vector<std::string> SchemaV7(Dialect dialect) {
  if (dialect == Dialect::kPostgres) {
    return {
        "CREATE TABLE idx_text (rk BIGINT PRIMARY KEY, narrative TEXT NOT NULL, content TEXT "
        "NOT NULL)"};
  }
  // External content (content='idx_text'): the FTS table keeps only its trigram index, not a
  // second copy of the text; the triggers give it every row idx_text gains or loses (an FTS5
  // 'delete' needs the old values, which the trigger has).
  return {
      "CREATE TABLE idx_text (rk INTEGER PRIMARY KEY, narrative TEXT NOT NULL, content TEXT NOT "
      "NULL)",
      "CREATE VIRTUAL TABLE idx_text_fts USING fts5(narrative, content, content='idx_text', "
      "content_rowid='rk', tokenize='trigram', detail='none')",
      "CREATE TRIGGER idx_text_ai AFTER INSERT ON idx_text BEGIN INSERT INTO idx_text_fts(rowid, "
      "narrative, content) VALUES (new.rk, new.narrative, new.content); END",
      "CREATE TRIGGER idx_text_ad AFTER DELETE ON idx_text BEGIN INSERT INTO "
      "idx_text_fts(idx_text_fts, rowid, narrative, content) VALUES ('delete', old.rk, "
      "old.narrative, old.content); END"};
}

std::vector<std::string> SchemaV8(Dialect dialect) {
  if (dialect == Dialect::kPostgres) return {};  // the same tables; nothing to change
  // No insert trigger: the session gives idx_text_fts the idx_text rows of a transaction in one
  // statement when it flushes its queue (decision 0048), not row by row. The delete trigger
  // stays (an update's or re-index's DELETE of idx_text rows, which FTS5 must see with their
  // values). columnsize=0: no docsize row per document (only ranking reads it; we never rank).
  // The FTS table is rebuilt from idx_text, which a session-12 store has filled.
  return {"DROP TRIGGER IF EXISTS idx_text_ai", "DROP TABLE idx_text_fts",
          "CREATE VIRTUAL TABLE idx_text_fts USING fts5(narrative, content, content='idx_text', "
          "content_rowid='rk', tokenize='trigram', detail='none', columnsize=0)",
          "INSERT INTO idx_text_fts (idx_text_fts) VALUES ('rebuild')"};
}

std::vector<std::string> SchemaV9(Dialect dialect) {
  // The rows keep their seq (history paging cursors and `_since` order stay valid). A row of a
  // resource's current version gets json NULL: that JSON is resources.json (decision 0049).
  if (dialect == Dialect::kPostgres) {
    return {"ALTER TABLE history ADD COLUMN rk BIGINT",
            "ALTER TABLE history ALTER COLUMN json DROP NOT NULL",
            "UPDATE history h SET rk = r.rk, json = CASE WHEN h.version = r.version THEN NULL "
            "ELSE h.json END FROM resources r WHERE r.type = h.type AND r.id = h.id",
            "ALTER TABLE history ALTER COLUMN rk SET NOT NULL",
            // Also drops UNIQUE (type, id, version).
            "ALTER TABLE history DROP COLUMN type, DROP COLUMN id",
            "CREATE UNIQUE INDEX history_by_version ON history (rk, version)"};
  }
  // seq INTEGER PRIMARY KEY without AUTOINCREMENT: history rows are never deleted, so the next
  // rowid (MAX + 1) is the same value without the sqlite_sequence update per INSERT.
  return {
      "CREATE TABLE history_v9 (seq INTEGER PRIMARY KEY, rk INTEGER NOT NULL, version BIGINT "
      "NOT NULL, last_updated BIGINT NOT NULL, deleted INTEGER NOT NULL, json TEXT)",
      "INSERT INTO history_v9 (seq, rk, version, last_updated, deleted, json) SELECT h.seq, "
      "r.rk, h.version, h.last_updated, h.deleted, CASE WHEN h.version = r.version THEN NULL "
      "ELSE h.json END FROM history h JOIN resources r ON r.type = h.type AND r.id = h.id",
      "DROP TABLE history", "ALTER TABLE history_v9 RENAME TO history",
      "CREATE UNIQUE INDEX history_by_version ON history (rk, version)"};
}

std::vector<std::string> SchemaV10(Dialect) {
  return {"ALTER TABLE history ADD COLUMN method TEXT"};
}

std::vector<std::string> TextIndexSql(std::string_view ops) {
  const std::string o(ops);
  return {
      "CREATE INDEX IF NOT EXISTS idx_text_narrative_trgm ON idx_text USING gin (narrative " + o +
          ")",
      "CREATE INDEX IF NOT EXISTS idx_text_content_trgm ON idx_text USING gin (content " + o + ")"};
}

ParamKeys::ParamKeys(const Rows& rows) {
  for (const auto& row : rows) {
    if (row.size() < 3) continue;
    by_type_[row[1]][row[2]] = ToInt(row[0]);
  }
}

std::int64_t ParamKeys::Find(std::string_view type, std::string_view param) const {
  return Find(ForType(type), param);
}

ParamKeys::OfType ParamKeys::ForType(std::string_view type) const {
  auto t = by_type_.find(type);
  return t == by_type_.end() ? nullptr : &t->second;
}

std::int64_t ParamKeys::Find(OfType of_type, std::string_view param) {
  if (of_type == nullptr) return kNone;
  auto p = of_type->find(param);
  return p == of_type->end() ? kNone : p->second;
}

std::vector<std::string> Schema(int version, Dialect dialect) {
  switch (version) {
    case 1: return SchemaV1(dialect);
    case 2: return SchemaV2(dialect);
    case 3: return SchemaV3(dialect);
    case 4: return SchemaV4(dialect);
    case 5: return SchemaV5(dialect);
    case 6: return SchemaV6(dialect);
    case 7: return SchemaV7(dialect);
    case 8: return SchemaV8(dialect);
    case 9: return SchemaV9(dialect);
    case 10: return SchemaV10(dialect);
    default: return {};
  }
}

namespace {

// The first `chars` code points of UTF-8 `text` (all of it when shorter).
std::string_view PrefixOf(std::string_view text, std::size_t chars) {
  std::size_t seen = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      if (seen == chars) return text.substr(0, i);
      ++seen;
    }
  }
  return text;
}

}  // namespace

Result<std::optional<ResourceRow>> SqlSession::Read(std::string_view type, std::string_view id) {
  if (!pending_keys_.empty() && pending_keys_.count({std::string(type), std::string(id)}) > 0) {
    KAKEHASHI_TRY_VOID(FlushVersions());
  }
  KAKEHASHI_TRY(Rows rows, Query("SELECT type, id, version, last_updated, deleted, json FROM "
                                 "resources WHERE type = ? AND id = ?",
                                 {std::string(type), std::string(id)}));
  if (rows.empty()) return std::optional<ResourceRow>();
  return std::optional<ResourceRow>(RowFrom(rows[0]));
}

Result<std::optional<ResourceRow>> SqlSession::ReadVersion(std::string_view type,
                                                           std::string_view id,
                                                           std::int64_t version) {
  if (!pending_keys_.empty() && pending_keys_.count({std::string(type), std::string(id)}) > 0) {
    KAKEHASHI_TRY_VOID(FlushVersions());
  }
  KAKEHASHI_TRY(Rows rows, Query("SELECT r.type, r.id, h.version, h.last_updated, h.deleted, "
                                 "COALESCE(h.json, r.json) FROM resources r JOIN history h ON "
                                 "h.rk = r.rk WHERE r.type = ? AND r.id = ? AND h.version = ?",
                                 {std::string(type), std::string(id), version}));
  if (rows.empty()) return std::optional<ResourceRow>();
  return std::optional<ResourceRow>(RowFrom(rows[0]));
}

Result<std::vector<HistoryRow>> SqlSession::History(const HistoryQuery& query) {
  KAKEHASHI_TRY_VOID(FlushVersions());
  // History rows hold rk (schema 9); type and id are the resource's, and the current
  // version's JSON is resources.json (its history row's json is NULL).
  std::string sql =
      "SELECT h.seq, r.type, r.id, h.version, h.last_updated, h.deleted, COALESCE(h.json, "
      "r.json), h.method FROM history h JOIN resources r ON r.rk = h.rk WHERE 1 = 1";
  std::vector<Param> params;
  if (!query.type.empty()) {
    // A type's history (no id): SQLite "+r.type" keeps it reading history newest first and
    // stopping at the page, as before schema 9; on r.type's index it would read, join and sort
    // every version of every resource of the type (100,000 patients: 0.94 s against 0.02 s CPU).
    sql +=
        dialect_ == Dialect::kSqlite && query.id.empty() ? " AND +r.type = ?" : " AND r.type = ?";
    params.emplace_back(query.type);
  }
  if (!query.id.empty()) {
    sql += " AND r.id = ?";
    params.emplace_back(query.id);
  }
  if (query.since_us) {
    sql += " AND h.last_updated >= ?";
    params.emplace_back(*query.since_us);
  }
  if (query.before_seq) {
    sql += " AND h.seq < ?";
    params.emplace_back(*query.before_seq);
  }
  sql += " ORDER BY h.seq DESC LIMIT ?";
  params.emplace_back(static_cast<std::int64_t>(query.count));
  KAKEHASHI_TRY(Rows rows, Query(sql, params));
  std::vector<HistoryRow> out;
  out.reserve(rows.size());
  for (auto& cols : rows) {
    HistoryRow h;
    h.seq = ToInt(cols[0]);
    h.row = RowFrom(cols, 1);
    h.row.method = MethodFrom(cols[7]);
    out.push_back(std::move(h));
  }
  return out;
}

namespace {

// One sort key of alias r: its column (_id, _lastUpdated: NOT NULL) or the least (ascending) or
// greatest (descending) of the resource's index values of the parameter, NULL when it has none.
void AppendSortExpr(const SortKey& key, std::string_view type, const ParamKeys& keys,
                    std::string& sql, std::vector<Param>& params) {
  if (key.param == "_id" || key.param == "_lastUpdated") {
    sql += key.param == "_id" ? "r.id" : "r.last_updated";
    return;
  }
  std::string_view table = "idx_token";
  std::string_view column = "code";
  if (key.kind == Predicate::Kind::kString) {
    table = "idx_string";
    column = "value";
  } else if (key.kind == Predicate::Kind::kDate) {
    table = "idx_date";
    column = key.descending ? "high" : "low";
  } else if (key.kind == Predicate::Kind::kQuantity) {
    table = "idx_quantity";
    column = "value";
  }
  sql += "(SELECT ";
  sql += key.descending ? "MAX(s." : "MIN(s.";
  sql += column;
  sql += ") FROM ";
  sql += table;
  sql += " s WHERE s.rk = r.rk AND ";
  AppendParamMatch("s", type, key.param, keys, sql, params);
  sql += ")";
}

bool SortKeyNullable(const SortKey& key) {
  return key.param != "_id" && key.param != "_lastUpdated";
}

// A sort key value of a SortCursor as the bound value compared with the key's column: text for
// ids, strings and tokens, an integer for dates (µs) and _lastUpdated, a double for quantities
// (BuildSearch checked the form; a malformed one compares as 0).
Param SortCursorParam(const SortKey& key, const std::string& text) {
  if (key.param == "_id" || key.kind == Predicate::Kind::kString ||
      key.kind == Predicate::Kind::kToken) {
    return text;
  }
  if (key.kind == Predicate::Kind::kQuantity) {
    double v = 0;
    std::from_chars(text.data(), text.data() + text.size(), v);
    return v;
  }
  return ToInt(text);
}

// Rows of the derived table q (columns k0, k1…, id) strictly after `after` in the order
// "k0 [DESC], k1 [DESC]…, id" with missing values (NULL) last in either direction:
// k0 beyond c0 (or missing), or k0 equal to c0 and the rest after; a missing c0: k0 missing too
// and the rest after.
void AppendSortAfter(const std::vector<SortKey>& sort, const SortCursor& after, std::size_t i,
                     std::string& sql, std::vector<Param>& params) {
  if (i == sort.size()) {
    sql += "q.id > ?";
    params.emplace_back(after.id);
    return;
  }
  const std::string k = "q.k" + std::to_string(i);
  const std::optional<std::string>& c = after.values[i];
  if (!c) {
    sql += "(" + k + " IS NULL AND ";
    AppendSortAfter(sort, after, i + 1, sql, params);
    sql += ")";
    return;
  }
  sql += "(" + k + (sort[i].descending ? " < ?" : " > ?");
  params.push_back(SortCursorParam(sort[i], *c));
  if (SortKeyNullable(sort[i])) sql += " OR " + k + " IS NULL";
  sql += " OR (" + k + " = ? AND ";
  params.push_back(SortCursorParam(sort[i], *c));
  AppendSortAfter(sort, after, i + 1, sql, params);
  sql += "))";
}

// Key i of q as the text ResourceRow::sort_values gets: 'v' and the value, '' when missing. A
// double keeps 17 significant digits on SQLite (its text form has 15); PostgreSQL's float8 text
// is already the shortest exact form.
std::string SortValueText(const SortKey& key, std::size_t i, Dialect dialect) {
  const std::string k = "q.k" + std::to_string(i);
  std::string value = k;
  if (key.kind == Predicate::Kind::kQuantity && SortKeyNullable(key)) {
    value = dialect == Dialect::kSqlite ? "printf('%!.17g', " + k + ")" : k + "::text";
  } else if (dialect == Dialect::kPostgres) {
    value = k + "::text";
  }
  return "CASE WHEN " + k + " IS NULL THEN '' ELSE 'v' || " + value + " END";
}

}  // namespace

namespace {
// "r.type IN (?, …) AND " for a search without a type limited to some (SearchQuery::types); on
// SQLite "+r.type" keeps it driving from the other clauses (a compartment's references).
void AppendTypes(const SearchQuery& query, Dialect dialect, std::string& sql,
                 std::vector<Param>& params) {
  if (!query.type.empty() || query.types.empty()) return;
  sql += dialect == Dialect::kSqlite ? "+r.type IN (" : "r.type IN (";
  for (std::size_t i = 0; i < query.types.size(); ++i) {
    sql += i == 0 ? "?" : ", ?";
    params.emplace_back(query.types[i]);
  }
  sql += ") AND ";
}
}  // namespace

// A prefix search on a string parameter in the default order (an AND clause that is one plain
// string predicate) reads idx_string_prefix in (last_updated, id) order: the page costs its own
// rows, however common or rare the name. nullopt: not applicable.
namespace {
std::optional<std::size_t> PrefixDriver(const SearchQuery& query) {
  if (query.type.empty() || !query.sort.empty() || IsSelective(query.where)) return std::nullopt;
  for (std::size_t i = 0; i < query.where.size(); ++i) {
    const auto& any = query.where[i];
    // (A parameter stored as a union of others has no prefix rows of its own.)
    // (Nor have a token's :text rows, code "code:text".)
    if (any.size() == 1 && any[0].kind == Predicate::Kind::kString &&
        any[0].string_match == Predicate::StringMatch::kPrefix && !any[0].value.empty() &&
        any[0].param.find(':') == std::string::npos &&
        gateway::detail::SearchParamRegistry::Instance()
                .IndexedAs(query.type, any[0].param)
                .codes == std::vector<std::string>{any[0].param}) {
      return i;
    }
  }
  return std::nullopt;
}
}  // namespace

void SearchSql(const SearchQuery& query, Dialect dialect, const ParamKeys& keys, std::string& sql,
               std::vector<Param>& params) {
  if (auto driver = PrefixDriver(query)) {
    const Predicate& p = query.where[*driver][0];
    sql = "SELECT ";
    sql += kCols;
    // CROSS JOIN: SQLite keeps the written join order (drive from the prefix index).
    sql +=
        " FROM idx_string_prefix p CROSS JOIN resources r WHERE p.pid = ? AND p.prefix = ? AND "
        "r.rk = p.rk AND r.deleted = 0";
    // Stored prefixes never end in a space (Write), so a cut that does is shortened.
    std::string_view prefix = PrefixOf(p.value, kStringPrefixChars);
    while (prefix.ends_with(' ')) prefix.remove_suffix(1);
    params = {keys.Find(query.type, p.param), std::string(prefix)};
    Conjunction rest;
    for (std::size_t i = 0; i < query.where.size(); ++i) {
      // A value longer than the prefix used is checked against the full values too.
      if (i != *driver || prefix.size() < p.value.size()) rest.push_back(query.where[i]);
    }
    if (!rest.empty()) {
      sql += " AND ";
      AppendConjunction(rest, "r", query.type, dialect, keys, sql, params, 0,
                        dialect == Dialect::kSqlite);
    }
    if (query.after) {
      sql += " AND (p.last_updated > ? OR (p.last_updated = ? AND p.id > ?))";
      params.emplace_back(query.after->first);
      params.emplace_back(query.after->first);
      params.emplace_back(query.after->second);
    }
    sql += " ORDER BY p.last_updated, p.id LIMIT ? OFFSET ?";
    params.emplace_back(static_cast<std::int64_t>(query.count));
    params.emplace_back(query.offset);
    return;
  }
  sql = "SELECT ";
  sql += kCols;
  params.clear();
  for (std::size_t i = 0; i < query.sort.size(); ++i) {
    sql += ", ";
    AppendSortExpr(query.sort[i], query.type, keys, sql, params);
    sql += " AS k" + std::to_string(i);
  }
  sql += " FROM resources r WHERE r.deleted = 0 AND ";
  // SQLite has no value statistics, so the plan is chosen here (PostgreSQL's planner decides
  // itself): with a selective parameter (an id, a token code, a reference target) drive the
  // query from the index tables through the primary key ("+r.type" keeps SQLite from scanning
  // resources_by_time); otherwise scan resources in result order and probe each one's index rows,
  // which stops after `count` matches.
  const bool sqlite = dialect == Dialect::kSqlite;
  const bool selective = IsSelective(query.where);
  if (!query.type.empty()) {
    sql += sqlite && selective ? "+r.type = ? AND " : "r.type = ? AND ";
    params.emplace_back(query.type);
  }
  AppendTypes(query, dialect, sql, params);
  AppendConjunction(query.where, "r", query.type, dialect, keys, sql, params, 0,
                    sqlite && !selective);
  if (query.sort.empty() && query.type.empty()) {
    // Several types (a compartment): ids are unique per type only, so the type is part of the
    // order and of the cursor.
    if (query.after) {
      sql +=
          " AND (r.last_updated > ? OR (r.last_updated = ? AND (r.type > ? OR (r.type = ? AND "
          "r.id > ?))))";
      params.emplace_back(query.after->first);
      params.emplace_back(query.after->first);
      params.emplace_back(query.after_type);
      params.emplace_back(query.after_type);
      params.emplace_back(query.after->second);
    }
    sql += " ORDER BY r.last_updated, r.type, r.id";
  } else if (query.sort.empty()) {
    if (query.after) {
      sql += " AND (r.last_updated > ? OR (r.last_updated = ? AND r.id > ?))";
      params.emplace_back(query.after->first);
      params.emplace_back(query.after->first);
      params.emplace_back(query.after->second);
    }
    sql += " ORDER BY r.last_updated, r.id";
  } else {
    // An explicit sort (decision 0039): the keys are columns k0, k1… of a derived table q, so
    // the order, the keyset condition of `sort_after` and the values handed back for the next
    // cursor read each key once per row. A resource without a value of a key comes last in
    // either direction (decision 0033; NULLS LAST, SQLite >= 3.30); the id (unique within the
    // type) breaks ties, so the order is total and a keyset position is exact.
    std::string outer = "SELECT q.type, q.id, q.version, q.last_updated, q.deleted, q.json";
    for (std::size_t i = 0; i < query.sort.size(); ++i) {
      outer += ", " + SortValueText(query.sort[i], i, dialect);
    }
    outer += " FROM (" + sql + ") q";
    if (query.sort_after && query.sort_after->values.size() == query.sort.size()) {
      outer += " WHERE ";
      AppendSortAfter(query.sort, *query.sort_after, 0, outer, params);
    }
    outer += " ORDER BY ";
    for (std::size_t i = 0; i < query.sort.size(); ++i) {
      outer += "q.k" + std::to_string(i);
      outer += query.sort[i].descending ? " DESC" : " ASC";
      // (_id and _lastUpdated are NOT NULL: no NULLS clause, so SQLite may read an index in
      // order.)
      if (SortKeyNullable(query.sort[i])) outer += " NULLS LAST";
      outer += ", ";
    }
    outer += "q.id";
    sql = std::move(outer);
  }
  sql += " LIMIT ? OFFSET ?";
  params.emplace_back(static_cast<std::int64_t>(query.count));
  params.emplace_back(query.offset);
}

std::int64_t CommonTextThreshold(std::int64_t resources) {
  return std::max<std::int64_t>(
      50, static_cast<std::int64_t>(1.15 * std::sqrt(static_cast<double>(resources))));
}

Result<std::vector<ResourceRow>> SqlSession::Search(const SearchQuery& query) {
  KAKEHASHI_TRY_VOID(FlushPending());  // this transaction's own rows count
  std::optional<SearchQuery> adapted;
  const RunQuery run = [this](std::string_view sql, const std::vector<Param>& params) {
    return Query(sql, params);
  };
  if (dialect_ == Dialect::kSqlite) {
    KAKEHASHI_TRY(adapted, CommonTextProbes(query, run, search_threshold_));
  }
  KAKEHASHI_TRY(std::optional<SearchQuery> chained,
                PlanChains(adapted ? *adapted : query, dialect_, *keys_, run, search_threshold_));
  if (chained) adapted = std::move(chained);
  std::string sql;
  std::vector<Param> params;
  SearchSql(adapted ? *adapted : query, dialect_, *keys_, sql, params);
  KAKEHASHI_TRY(Rows rows, Query(sql, params));
  std::vector<ResourceRow> out;
  out.reserve(rows.size());
  for (auto& cols : rows) {
    out.push_back(RowFrom(cols));
    for (std::size_t i = 0; i < query.sort.size(); ++i) {
      std::string& v = cols[6 + i];
      out.back().sort_values.push_back(v.empty() ? std::nullopt
                                                 : std::optional<std::string>(v.substr(1)));
    }
  }
  return out;
}

void CountSql(const SearchQuery& query, Dialect dialect, const ParamKeys& keys, std::string& sql,
              std::vector<Param>& params) {
  sql = "SELECT COUNT(*) FROM resources r WHERE r.deleted = 0 AND ";
  params.clear();
  if (!query.type.empty()) {
    // As in Search: without statistics SQLite would rather scan the type's resources in
    // resources_by_time and test each against the index rows than read just the matches.
    sql += dialect == Dialect::kSqlite && HasDrivingIn(query.where) ? "+r.type = ? AND "
                                                                    : "r.type = ? AND ";
    params.emplace_back(query.type);
  }
  AppendTypes(query, dialect, sql, params);
  AppendConjunction(query.where, "r", query.type, dialect, keys, sql, params);
}

// A `_text`/`_content` term found through the trigram index costs per match (the FTS5 LIKE reads
// and checks every candidate: ~15 us each at 100,000 patients, 2-core VM), a resource scanned in
// result order with its own idx_text row checked ~1 us, and the scan stops after a page: with M
// matches among N resources the index costs ~15 M, the scan ~N / M per row of the page (20 rows:
// 20 N / M), equal at M ~ 1.15 sqrt(N) (CommonTextThreshold; N: the largest rk, at least the
// number of resources, which errs towards the index). So a predicate of a top-level clause whose
// trigram candidates reach the threshold (counted with that LIMIT, so a common term costs at
// most the threshold) is marked `probe` and checked per resource instead (AppendText).
Result<std::optional<SearchQuery>> CommonTextProbes(const SearchQuery& query, const RunQuery& run,
                                                    std::int64_t fixed) {
  std::optional<SearchQuery> out;
  std::int64_t threshold = fixed > 0 ? fixed : 0;
  for (std::size_t i = 0; i < query.where.size(); ++i) {
    for (std::size_t j = 0; j < query.where[i].size(); ++j) {
      const Predicate& p = query.where[i][j];
      if (!HasFtsProbe(p)) continue;
      if (threshold == 0) {
        KAKEHASHI_TRY(Rows rows, run("SELECT COALESCE(MAX(rk), 0) FROM resources", {}));
        threshold = CommonTextThreshold(rows.empty() ? 0 : ToInt(rows[0][0]));
      }
      // The candidates themselves, not their count: under the threshold the search reads them
      // instead of the trigram index again (decision 0042; a rare term read twice cost 3.6-4.2
      // -> 5.3-10.7 ms per request at 100,000 patients).
      std::string sql;
      std::vector<Param> params;
      AppendFtsMatch(p, sql, params);
      sql += " LIMIT ?";
      params.emplace_back(threshold);
      KAKEHASHI_TRY(Rows rows, run(sql, params));
      if (!out) out = query;
      if (static_cast<std::int64_t>(rows.size()) >= threshold) {
        out->where[i][j].probe = true;
        continue;
      }
      std::vector<std::int64_t> rks;
      rks.reserve(rows.size());
      for (const auto& row : rows) rks.push_back(row.empty() ? 0 : ToInt(row[0]));
      out->where[i][j].candidates = std::move(rks);
    }
  }
  return out;
}

// Chains (decision 0042). The form that reads a chain's matches whole (its referenced resources'
// ids, then the references to them by value) costs per match, c_v each; the per-resource form
// scans the searched type in result order and follows each resource's reference(s), c_p per
// link, until the page is full: page * N / M resources for M matches among N. Equal at
// M^2 = page * N * links * c_p / c_v; measured at 100,000 patients (docs/performance.md,
// session 14) c_p / c_v ~ 0.5. N: the largest rk (at least the type's resources: errs towards
// the by-value form). At least 50.
std::int64_t ChainThreshold(std::int64_t resources, int page, int links) {
  const double m = std::sqrt(0.5 * static_cast<double>(std::max<std::int64_t>(resources, 0)) *
                             std::max(page, 1) * std::max(links, 1));
  return std::max<std::int64_t>(50, static_cast<std::int64_t>(m));
}

// A chain read by value is read in result order too (a scan of the type testing membership in
// its matches, ~0.1 us per resource, stopping after a page) unless it is driven from its matches
// (each row read and sorted, ~12 us per match including its JSON): the latter wins below
// M^2 = page * N * 0.1 / 12, i.e. M = sqrt(page * N / 120) (session 14: 1 match 11.3 ms -> 25
// us, 1,000 matches 9.1 -> 21.5 ms). At least 1.
std::int64_t ChainDriveThreshold(std::int64_t resources, int page) {
  const double m = std::sqrt(static_cast<double>(std::max<std::int64_t>(resources, 0)) *
                             std::max(page, 1) / 120.0);
  return std::max<std::int64_t>(1, static_cast<std::int64_t>(m));
}

namespace {

bool IsForwardChain(const Predicate& p) {
  return p.kind == Predicate::Kind::kReference && p.chain && !p.reverse;
}

// The links of forward chain p: 1 + those of its longest inner chain.
int ChainLinks(const Predicate& p) {
  int inner = 0;
  for (const auto& any : *p.chain) {
    for (const Predicate& q : any) {
      if (IsForwardChain(q)) inner = std::max(inner, ChainLinks(q));
    }
  }
  return 1 + inner;
}

// PlanChains for one top-level chain and its threshold.
class ChainPlanner {
 public:
  ChainPlanner(Dialect dialect, const ParamKeys& keys, const RunQuery& run, std::int64_t threshold,
               std::int64_t drive)
      : dialect_(dialect), keys_(keys), run_(run), threshold_(threshold), drive_(drive) {}

  // Marks forward chain p (over resources of `type`, at `depth`) and its inner chains `few` or
  // `probe`; returns p's matches counted up to the threshold.
  Result<std::int64_t> Plan(Predicate& p, std::string_view type, int depth) {
    auto inner = std::make_shared<Conjunction>(*p.chain);
    std::vector<std::vector<std::int64_t>> counts(inner->size());
    for (std::size_t i = 0; i < inner->size(); ++i) {
      counts[i].assign((*inner)[i].size(), threshold_);
      for (std::size_t j = 0; j < (*inner)[i].size(); ++j) {
        Predicate& q = (*inner)[i][j];
        if (IsForwardChain(q)) {
          KAKEHASHI_TRY(counts[i][j], Plan(q, p.chain_type, depth + 1));
        }
      }
    }
    // The referenced resources' criteria are bounded when one AND-ed clause matches fewer than
    // the threshold (the ids read whole then cost fewer than it).
    bool bounded = false;
    std::int64_t bound = threshold_;
    for (std::size_t i = 0; i < inner->size() && !bounded; ++i) {
      std::int64_t sum = 0;
      for (std::size_t j = 0; j < (*inner)[i].size() && sum < threshold_; ++j) {
        const Predicate& q = (*inner)[i][j];
        std::int64_t n = counts[i][j];
        if (!IsForwardChain(q) && q.kind != Predicate::Kind::kText) {
          std::vector<Param> params;
          const std::string rows = RowsOf(q, p.chain_type, depth + 1, params);
          if (!rows.empty()) {
            KAKEHASHI_TRY(n, CountUpTo(rows, std::move(params)));
          }
        }
        sum += n;
      }
      bounded = sum < threshold_;
      if (bounded) bound = sum;
    }
    p.chain = inner;
    // The top link is counted only when it may drive the query: with as many referenced
    // resources as the drive threshold it is taken to match as many (each is referenced, as a
    // rule), and is read by value in result order, unmarked (the count would cost as much as
    // the search).
    if (bounded && depth == 0 && bound >= drive_) return bound;
    if (bounded) {
      std::vector<Param> params;
      const std::string rows = RowsOf(p, type, depth, params);
      std::int64_t n = threshold_;
      if (!rows.empty()) {
        KAKEHASHI_TRY(n, CountUpTo(rows, std::move(params)));
      }
      if (depth == 0 && n >= drive_ && n < threshold_) return n;  // unmarked, as above
      if (n < threshold_) {
        p.few = true;
        return n;
      }
    }
    p.probe = true;
    return threshold_;
  }

 private:
  // The rows of `rows` (a "SELECT x.rk FROM …" statement) counted up to the threshold.
  Result<std::int64_t> CountUpTo(const std::string& rows, std::vector<Param> params) {
    std::string sql = "SELECT COUNT(*) FROM (" + rows + " LIMIT ?) n";
    params.emplace_back(threshold_);
    KAKEHASHI_TRY(Rows out, run_(sql, params));
    return out.empty() ? std::int64_t{0} : ToInt(out[0][0]);
  }

  // The sub-query of p's "a.rk IN (SELECT …)" form (its by-value rows), or "" when p is written
  // otherwise (negated, a per-row check, …).
  std::string RowsOf(const Predicate& p, std::string_view type, int depth,
                     std::vector<Param>& params) const {
    Predicate plain = p;
    plain.probe = false;
    plain.few = false;
    std::string sql;
    AppendPredicate(plain, "a", type, dialect_, keys_, sql, params, depth, false);
    constexpr std::string_view kHead = "a.rk IN (";
    if (!sql.starts_with(kHead)) return {};
    // The parenthesis opened by kHead must close at the end.
    int open = 0;
    for (std::size_t i = kHead.size() - 1; i < sql.size(); ++i) {
      if (sql[i] == '(') ++open;
      if (sql[i] == ')' && --open == 0 && i + 1 != sql.size()) return {};
    }
    return sql.substr(kHead.size(), sql.size() - kHead.size() - 1);
  }

  Dialect dialect_;
  const ParamKeys& keys_;
  const RunQuery& run_;
  std::int64_t threshold_;
  std::int64_t drive_;  // at the top: matches under it drive the query (ChainDriveThreshold)
};

}  // namespace

Result<std::optional<SearchQuery>> PlanChains(const SearchQuery& query, Dialect dialect,
                                              const ParamKeys& keys, const RunQuery& run,
                                              std::int64_t fixed, std::int64_t fixed_drive) {
  if (query.type.empty() || !query.sort.empty()) return std::optional<SearchQuery>();
  std::optional<SearchQuery> out;
  std::int64_t resources = -1;
  for (std::size_t i = 0; i < query.where.size(); ++i) {
    for (std::size_t j = 0; j < query.where[i].size(); ++j) {
      if (!IsForwardChain(query.where[i][j])) continue;
      if (!out) out = query;
      Predicate& p = out->where[i][j];
      std::int64_t threshold = fixed;
      if (threshold <= 0) {
        if (resources < 0) {
          KAKEHASHI_TRY(Rows rows, run("SELECT COALESCE(MAX(rk), 0) FROM resources", {}));
          resources = rows.empty() ? 0 : ToInt(rows[0][0]);
        }
        threshold = ChainThreshold(resources, query.count, ChainLinks(p));
      }
      std::int64_t drive = fixed_drive > 0 ? fixed_drive : fixed;
      if (drive <= 0) drive = ChainDriveThreshold(resources, query.count);
      ChainPlanner planner(dialect, keys, run, threshold, drive);
      KAKEHASHI_TRY_VOID(planner.Plan(p, query.type, 0));
    }
  }
  return out;
}

Result<std::int64_t> SqlSession::Count(const SearchQuery& query) {
  KAKEHASHI_TRY_VOID(FlushPending());
  std::string sql;
  std::vector<Param> params;
  CountSql(query, dialect_, *keys_, sql, params);
  KAKEHASHI_TRY(Rows rows, Query(sql, params));
  return rows.empty() ? std::int64_t{0} : ToInt(rows[0][0]);
}

namespace {
// The WHERE clause of a ReferencedQuery over alias r (after "WHERE "), without its keyset.
void AppendReferenced(const ReferencedQuery& query, Dialect dialect, const ParamKeys& keys,
                      std::string& sql, std::vector<Param>& params) {
  // The referenced (type, id) pairs from the sources' reference rows (idx_ref by rk), joined to
  // the resources they name (absolute URLs have no type and name none).
  sql +=
      "r.deleted = 0 AND r.rk IN (SELECT t.rk FROM idx_ref rx JOIN resources t ON t.type = "
      "rx.target_type AND t.id = rx.target_id WHERE rx.rk IN (SELECT s.rk FROM resources s "
      "WHERE s.deleted = 0 AND ";
  AppendConjunction(query.sources, "s", "", dialect, keys, sql, params);
  sql += " UNION SELECT s.rk FROM resources s WHERE s.type = ? AND s.id = ?))";
  params.emplace_back(query.source_type);
  params.emplace_back(query.source_id);
  if (!query.exclude.empty()) {
    sql += " AND NOT (";
    AppendConjunction(query.exclude, "r", "", dialect, keys, sql, params);
    sql += ")";
  }
  if (!query.types.empty()) {
    sql += " AND r.type IN (";
    for (std::size_t i = 0; i < query.types.size(); ++i) {
      sql += i == 0 ? "?" : ", ?";
      params.emplace_back(query.types[i]);
    }
    sql += ")";
  }
  for (const std::string& type : query.skip_types) {
    sql += " AND r.type <> ?";
    params.emplace_back(type);
  }
  if (!query.where.empty()) {
    sql += " AND ";
    AppendConjunction(query.where, "r", "", dialect, keys, sql, params);
  }
}
}  // namespace

Result<std::vector<ResourceRow>> SqlSession::Referenced(const ReferencedQuery& query) {
  KAKEHASHI_TRY_VOID(FlushPending());
  std::string sql = "SELECT ";
  sql += kCols;
  sql += " FROM resources r WHERE ";
  std::vector<Param> params;
  AppendReferenced(query, dialect_, *keys_, sql, params);
  if (query.after) {
    sql += " AND (r.type > ? OR (r.type = ? AND r.id > ?))";
    params.emplace_back(query.after->first);
    params.emplace_back(query.after->first);
    params.emplace_back(query.after->second);
  }
  sql += " ORDER BY r.type, r.id LIMIT ?";
  params.emplace_back(static_cast<std::int64_t>(query.count));
  KAKEHASHI_TRY(Rows rows, Query(sql, params));
  std::vector<ResourceRow> out;
  out.reserve(rows.size());
  for (auto& cols : rows) out.push_back(RowFrom(cols));
  return out;
}

Result<std::int64_t> SqlSession::CountReferenced(const ReferencedQuery& query) {
  KAKEHASHI_TRY_VOID(FlushPending());
  std::string sql = "SELECT COUNT(*) FROM resources r WHERE ";
  std::vector<Param> params;
  AppendReferenced(query, dialect_, *keys_, sql, params);
  KAKEHASHI_TRY(Rows rows, Query(sql, params));
  return rows.empty() ? std::int64_t{0} : ToInt(rows[0][0]);
}

namespace {

enum class IndexTable { kToken, kString, kStringPrefix, kDate, kRef, kQuantity, kComposite, kText };
// Rows per INSERT (SqlSession::FlushPending): a 100-Observation transaction's 500 index rows
// are 12 statements. At most 64 x 5 = 320 bound parameters.
constexpr std::size_t kInsertBatch = 64;
// Resources and history rows per INSERT (7 and 5 parameters each).
constexpr std::size_t kVersionBatch = 32;
constexpr std::size_t kVersionColumns = 7;  // of a queued resources row

// "INSERT INTO idx_x (cols) VALUES (?, …), (?, …)…" for `rows` rows (1..kInsertBatch), built once.
// SQLite: INSERT OR IGNORE, as a resource may yield the same row twice and the index tables are
// keyed by their rows (SchemaV4); PostgreSQL's tables have no key and keep duplicates.
struct Shape {
  std::string_view head;
  int columns;
};
constexpr Shape kShapes[] = {
    {"idx_token (pid, system, code, rk) VALUES ", 4},
    {"idx_string (pid, value, rk) VALUES ", 3},
    {"idx_string_prefix (pid, prefix, last_updated, id, rk) VALUES ", 5},
    {"idx_date (pid, low, high, rk) VALUES ", 4},
    {"idx_ref (pid, target_type, target_id, rk) VALUES ", 4},
    {"idx_quantity (pid, value, system, code, rk) VALUES ", 5},
    {"idx_composite (pid, system1, code1, system2, code2, num, low, high, rk) VALUES ", 9},
    {"idx_text (rk, narrative, content) VALUES ", 3},
};
static_assert(std::size(kShapes) == std::size(kIndexTables));

const std::string& InsertSql(Dialect dialect, IndexTable table, std::size_t rows) {
  static const auto kSql = [] {
    std::vector<std::vector<std::vector<std::string>>> by_dialect;
    for (std::string_view insert : {"INSERT OR IGNORE INTO ", "INSERT INTO "}) {
      std::vector<std::vector<std::string>> all;
      for (const Shape& shape : kShapes) {
        std::vector<std::string> by_rows(kInsertBatch + 1);
        std::string tuple = "(?";
        for (int c = 1; c < shape.columns; ++c) tuple += ", ?";
        tuple += ")";
        for (std::size_t n = 1; n <= kInsertBatch; ++n) {
          std::string sql(insert);
          sql += shape.head;
          for (std::size_t i = 0; i < n; ++i) {
            if (i > 0) sql += ", ";
            sql += tuple;
          }
          by_rows[n] = std::move(sql);
        }
        all.push_back(std::move(by_rows));
      }
      by_dialect.push_back(std::move(all));
    }
    return by_dialect;
  }();
  return kSql[dialect == Dialect::kSqlite ? 0 : 1][static_cast<std::size_t>(table)][rows];
}

}  // namespace

std::optional<Result<void>> SqlSession::CopyRows(std::string_view /*table_columns*/,
                                                 const std::vector<Param>& /*params*/,
                                                 std::size_t /*rows*/) {
  return std::nullopt;
}

Result<void> SqlSession::FlushTable(std::size_t table) {
  PendingRows& p = pending_[table];
  if (p.rows == 0) return {};
  Result<void> r;
  std::optional<Result<void>> copied;
  if (copy_rows_ > 0 && p.rows >= copy_rows_) {
    std::string_view head = kShapes[table].head;
    head.remove_suffix(std::string_view(" VALUES ").size());
    copied = CopyRows(head, p.params, p.rows);
  }
  if (copied) {
    r = *copied;
  } else if (p.rows <= kInsertBatch) {
    r = Exec(InsertSql(dialect_, static_cast<IndexTable>(table), p.rows), p.params);
  } else {  // rows held by a re-index step (hold_pending_): kInsertBatch at a time
    const std::size_t columns = p.params.size() / p.rows;
    std::vector<Param> chunk;
    for (std::size_t first = 0; first < p.rows && r; first += kInsertBatch) {
      const std::size_t n = std::min(kInsertBatch, p.rows - first);
      const auto begin = p.params.begin() + static_cast<std::ptrdiff_t>(first * columns);
      chunk.assign(std::make_move_iterator(begin),
                   std::make_move_iterator(begin + static_cast<std::ptrdiff_t>(n * columns)));
      r = Exec(InsertSql(dialect_, static_cast<IndexTable>(table), n), chunk);
    }
  }
  p.params.clear();
  p.rows = 0;
  return r;
}

namespace {

// "INSERT INTO resources …" (with rk) / "INSERT INTO history …" of `rows` rows
// (1..kVersionBatch).
const std::string& VersionSql(bool history, std::size_t rows) {
  static const auto kSql = [] {
    std::vector<std::vector<std::string>> out(2, std::vector<std::string>(kVersionBatch + 1));
    for (int h = 0; h < 2; ++h) {
      for (std::size_t n = 1; n <= kVersionBatch; ++n) {
        std::string sql = h == 0 ? "INSERT INTO resources" : "INSERT INTO history";
        // History rows of new versions have no JSON (NULL): theirs is resources.json until the
        // next version of the resource copies it (Write).
        sql += h == 0 ? " (type, id, version, last_updated, deleted, json, rk) VALUES "
                      : " (rk, version, last_updated, deleted, method) VALUES ";
        const std::string_view tuple = h == 0 ? "(?, ?, ?, ?, ?, ?, ?)" : "(?, ?, ?, ?, ?)";
        for (std::size_t i = 0; i < n; ++i) {
          if (i > 0) sql += ", ";
          sql += tuple;
        }
        if (h == 0) {
          sql +=
              " ON CONFLICT (type, id) DO UPDATE SET version = excluded.version, last_updated = "
              "excluded.last_updated, deleted = excluded.deleted, json = excluded.json";
        }
        out[static_cast<std::size_t>(h)][n] = std::move(sql);
      }
    }
    return out;
  }();
  return kSql[history ? 1 : 0][rows];
}

}  // namespace

Result<void> SqlSession::FlushVersions() {
  PendingRows& p = pending_resources_;
  next_rk_ = 0;  // MAX(rk) is read again (SQLite): it now covers these rows, or a new transaction
  if (p.rows == 0) return {};
  // The history rows' values (rk, version, last_updated, deleted, method) from the queued
  // resources rows (type, id, version, last_updated, deleted, json, rk) and their methods.
  std::vector<Param> history;
  history.reserve(p.rows * 5);
  for (std::size_t i = 0; i < p.rows; ++i) {
    const Param* v = p.params.data() + i * kVersionColumns;
    history.push_back(v[6]);
    history.insert(history.end(), v + 2, v + 5);
    history.emplace_back(std::string(pending_methods_[i]));
  }
  auto r = Exec(VersionSql(false, p.rows), p.params);
  if (r) r = Exec(VersionSql(true, p.rows), history);
  p.params.clear();
  p.rows = 0;
  pending_methods_.clear();
  pending_keys_.clear();
  if (!r) DropPending();
  return r;
}

Result<void> SqlSession::FlushPending(bool text_index) {
  KAKEHASHI_TRY_VOID(FlushVersions());
  if (has_pending_) {
    has_pending_ = false;
    for (std::size_t t = 0; t < pending_.size(); ++t) {
      if (auto r = FlushTable(t); !r) {
        DropPending();
        return r;
      }
    }
  }
  return text_index ? FlushTextIndex() : Result<void>();
}

Result<void> SqlSession::FlushTextIndex() {
  if (text_queue_.empty()) return {};
  // A JSON array of the rks: one statement whatever their number. The rows come in rk order
  // (FTS5 starts a new segment when a rowid is lower than the last one it was given).
  std::string list = "[";
  for (std::size_t i = 0; i < text_queue_.size(); ++i) {
    if (i > 0) list += ',';
    list += std::to_string(text_queue_[i]);
  }
  list += ']';
  KAKEHASHI_TRY_VOID(
      Exec("INSERT INTO idx_text_fts (rowid, narrative, content) SELECT rk, narrative, content "
           "FROM idx_text WHERE rk IN (SELECT value FROM json_each(?)) ORDER BY rk",
           {std::move(list)}));
  if (!text_marks_.empty()) {
    auto& flushed = text_marks_.back().flushed;
    flushed.insert(flushed.end(), text_queue_.begin(), text_queue_.end());
  }
  text_queue_.clear();
  return {};
}

void SqlSession::ResetTextIndex() noexcept {
  text_queue_.clear();
  text_marks_.clear();
}

void SqlSession::DropPending() noexcept {
  pending_resources_.params.clear();
  pending_resources_.rows = 0;
  pending_methods_.clear();
  next_rk_ = 0;
  pending_keys_.clear();
  has_pending_ = false;
  for (PendingRows& p : pending_) {
    p.params.clear();
    p.rows = 0;
  }
}

Result<std::int64_t> SqlSession::NewResourceKey() {
  if (dialect_ == Dialect::kSqlite) {
    if (next_rk_ == 0) {
      KAKEHASHI_TRY(Rows rows, Query("SELECT COALESCE(MAX(rk), 0) + 1 FROM resources", {}));
      next_rk_ = rows.empty() ? 1 : ToInt(rows[0][0]);
    }
    return next_rk_++;
  }
  if (rk_pool_.empty()) {
    // 256 at a time with bulk writes (StoreOptions::postgres_bulk: a round trip per 32
    // resources was a load's largest count of them); unused ones are gaps, never reused.
    KAKEHASHI_TRY(Rows rows, Query(copy_rows_ > 0 ? "SELECT nextval('resources_rk_seq') FROM "
                                                    "generate_series(1, 256)"
                                                  : "SELECT nextval('resources_rk_seq') FROM "
                                                    "generate_series(1, 32)",
                                   {}));
    for (auto it = rows.rbegin(); it != rows.rend(); ++it) rk_pool_.push_back(ToInt((*it)[0]));
    if (rk_pool_.empty()) return make_error_code(errc::kQueryFailed);
  }
  const std::int64_t rk = rk_pool_.back();
  rk_pool_.pop_back();
  return rk;
}

Result<void> SqlSession::Write(const ResourceRow& row, const IndexEntries& index) {
  if (!InTransaction()) return make_error_code(errc::kNotInTransaction);
  const std::int64_t deleted = row.deleted ? 1 : 0;
  // A first version has no index rows yet (and a delete removed the previous ones); otherwise
  // the old rows go first, pending ones of this transaction included, and the resource keeps
  // its rk.
  std::int64_t rk = 0;  // none: rk values start at 1
  if (row.version != 1) {
    KAKEHASHI_TRY_VOID(FlushPending());
    KAKEHASHI_TRY(Rows found,
                  Query("SELECT rk FROM resources WHERE type = ? AND id = ?", {row.type, row.id}));
    if (!found.empty()) {
      rk = ToInt(found[0][0]);
      // The version being replaced keeps its JSON in its history row from now on (decision
      // 0049: a current version's JSON is stored once, in resources).
      KAKEHASHI_TRY_VOID(
          Exec("UPDATE history SET json = (SELECT json FROM resources WHERE rk = "
               "?) WHERE rk = ? AND json IS NULL",
               {rk, rk}));
      for (std::string_view table : kIndexTables) {
        std::string sql = "DELETE FROM ";
        sql += table;
        sql += " WHERE rk = ?";
        KAKEHASHI_TRY_VOID(Exec(sql, {rk}));
      }
    }
  }
  if (rk == 0) {
    KAKEHASHI_TRY(rk, NewResourceKey());
  }
  // The current row and the history row (its version, time and rk) are queued too; a key is
  // queued once per batch (an earlier version of it was flushed above), which PostgreSQL's
  // upsert requires.
  {
    PendingRows& p = pending_resources_;
    p.params.emplace_back(row.type);
    p.params.emplace_back(row.id);
    p.params.emplace_back(row.version);
    p.params.emplace_back(row.last_updated_us);
    p.params.emplace_back(deleted);
    p.params.emplace_back(row.json);
    p.params.emplace_back(rk);
    pending_methods_.push_back(MethodText(row.method));
    pending_keys_.emplace(row.type, row.id);
    if (++p.rows == kVersionBatch) KAKEHASHI_TRY_VOID(FlushVersions());
  }
  if (row.deleted) return {};
  return QueueIndexRows(rk, row, index);
}

Result<void> SqlSession::QueueIndexRows(std::int64_t rk, const ResourceRow& row,
                                        const IndexEntries& index) {
  // Rows are queued per table (pending_) and inserted kInsertBatch at a time. `param(i)`: the
  // code of row i; `add` its values.
  const ParamKeys::OfType of_type = keys_->ForType(row.type);
  auto queue = [&](IndexTable table, std::size_t total, auto&& param, auto&& add) -> Result<void> {
    PendingRows& p = pending_[static_cast<std::size_t>(table)];
    for (std::size_t i = 0; i < total; ++i) {
      const std::int64_t pid = ParamKeys::Find(of_type, param(i));
      if (pid == ParamKeys::kNone) continue;  // not a compiled parameter: never searched
      p.params.emplace_back(pid);
      add(p.params, i);
      p.params.emplace_back(rk);
      has_pending_ = true;
      if (++p.rows >= (copy_rows_ > 0 ? kCopyHoldRows : kInsertBatch) && !hold_pending_) {
        if (auto r = FlushTable(static_cast<std::size_t>(table)); !r) {
          DropPending();
          return r;
        }
      }
    }
    return {};
  };
  KAKEHASHI_TRY_VOID(queue(
      IndexTable::kToken, index.tokens.size(),
      [&](std::size_t i) -> std::string_view { return index.tokens[i].param; },
      [&](std::vector<Param>& params, std::size_t i) {
        const auto& t = index.tokens[i];
        params.emplace_back(t.system);
        params.emplace_back(t.code);
      }));
  KAKEHASHI_TRY_VOID(queue(
      IndexTable::kString, index.strings.size(),
      [&](std::size_t i) -> std::string_view { return index.strings[i].param; },
      [&](std::vector<Param>& params, std::size_t i) {
        params.emplace_back(index.strings[i].value);
      }));
  // Prefixes of this resource's string values, each (param, prefix) once; not of the values
  // kept for :exact or :text (codes with a ':'), which are not searched by prefix rows.
  std::set<std::pair<std::string_view, std::string_view>> prefix_set;
  for (const auto& v : index.strings) {
    if (v.param.find(':') != std::string::npos) continue;
    for (std::size_t n = 1; n <= kStringPrefixChars; ++n) {
      std::string_view prefix = PrefixOf(v.value, n);
      if (!prefix.ends_with(' ')) prefix_set.emplace(v.param, prefix);
      if (prefix.size() == v.value.size()) break;
    }
  }
  std::vector<std::pair<std::string_view, std::string_view>> prefixes(prefix_set.begin(),
                                                                      prefix_set.end());
  KAKEHASHI_TRY_VOID(queue(
      IndexTable::kStringPrefix, prefixes.size(), [&](std::size_t i) { return prefixes[i].first; },
      [&](std::vector<Param>& params, std::size_t i) {
        params.emplace_back(std::string(prefixes[i].second));
        params.emplace_back(row.last_updated_us);
        params.emplace_back(row.id);
      }));
  KAKEHASHI_TRY_VOID(queue(
      IndexTable::kDate, index.dates.size(),
      [&](std::size_t i) -> std::string_view { return index.dates[i].param; },
      [&](std::vector<Param>& params, std::size_t i) {
        const auto& d = index.dates[i];
        params.emplace_back(d.low_us);
        params.emplace_back(d.high_us);
      }));
  KAKEHASHI_TRY_VOID(queue(
      IndexTable::kRef, index.references.size(),
      [&](std::size_t i) -> std::string_view { return index.references[i].param; },
      [&](std::vector<Param>& params, std::size_t i) {
        const auto& r = index.references[i];
        params.emplace_back(r.target_type);
        params.emplace_back(r.target_id);
      }));
  KAKEHASHI_TRY_VOID(queue(
      IndexTable::kQuantity, index.quantities.size(),
      [&](std::size_t i) -> std::string_view { return index.quantities[i].param; },
      [&](std::vector<Param>& params, std::size_t i) {
        const auto& q = index.quantities[i];
        params.emplace_back(q.value);
        params.emplace_back(q.system);
        params.emplace_back(q.code);
      }));
  // One idx_text row (no pid: `_text` and `_content` are the same two columns for every type).
  if (!index.narrative.empty() || !index.content.empty()) {
    PendingRows& p = pending_[static_cast<std::size_t>(IndexTable::kText)];
    p.params.emplace_back(rk);
    p.params.emplace_back(index.narrative);
    p.params.emplace_back(index.content);
    if (dialect_ == Dialect::kSqlite) text_queue_.push_back(rk);  // FTS5 at FlushPending
    has_pending_ = true;
    if (++p.rows >= (copy_rows_ > 0 ? kCopyHoldRows : kInsertBatch) && !hold_pending_) {
      if (auto r = FlushTable(static_cast<std::size_t>(IndexTable::kText)); !r) {
        DropPending();
        return r;
      }
    }
  }
  return queue(
      IndexTable::kComposite, index.composites.size(),
      [&](std::size_t i) -> std::string_view { return index.composites[i].param; },
      [&](std::vector<Param>& params, std::size_t i) {
        const auto& c = index.composites[i];
        params.emplace_back(c.system1);
        params.emplace_back(c.code1);
        params.emplace_back(c.system2);
        params.emplace_back(c.code2);
        params.emplace_back(c.number);
        params.emplace_back(c.low_us);
        params.emplace_back(c.high_us);
      });
}

std::vector<std::string> IndexStateSql() {
  return {
      "CREATE TABLE IF NOT EXISTS kakehashi_index_state (id INTEGER PRIMARY KEY, fingerprint TEXT "
      "NOT NULL, done_rk BIGINT)",
      "INSERT INTO kakehashi_index_state (id, fingerprint, done_rk) VALUES (1, '', 0) ON "
      "CONFLICT (id) DO NOTHING"};
}

Result<ReindexResult> SqlSession::ReindexStep(const IndexDefinition& def,
                                              const ReindexRequest& request) {
  if (InTransaction() || !def.extract) return make_error_code(errc::kQueryFailed);
  if (!request.restart) {
    // Up to date (every open of a current store): no write transaction.
    KAKEHASHI_TRY(Rows state, Query("SELECT fingerprint, COALESCE(done_rk, -1) FROM "
                                    "kakehashi_index_state WHERE id = 1",
                                    {}));
    if (!state.empty() && state[0][0] == def.fingerprint && ToInt(state[0][1]) < 0) {
      ReindexResult done;
      done.done = true;
      done.remaining = 0;
      return done;
    }
  }
  KAKEHASHI_TRY_VOID(Begin());
  auto result = ReindexInTransaction(def, request);
  if (!result) {
    Rollback();
    return result.error();
  }
  KAKEHASHI_TRY_VOID(Commit());  // rolls back itself when it fails
  return result;
}

Result<ReindexResult> SqlSession::ReindexInTransaction(const IndexDefinition& def,
                                                       const ReindexRequest& request) {
  const bool pg = dialect_ == Dialect::kPostgres;
  // PostgreSQL: the progress row's lock makes steps of several gateways run one after the other,
  // each continuing from the progress the previous one committed. (SQLite: the write lock.)
  KAKEHASHI_TRY(Rows state, Query(pg ? "SELECT fingerprint, COALESCE(done_rk, -1) FROM "
                                       "kakehashi_index_state WHERE id = 1 FOR UPDATE"
                                     : "SELECT fingerprint, COALESCE(done_rk, -1) FROM "
                                       "kakehashi_index_state WHERE id = 1",
                                  {}));
  if (state.empty()) return make_error_code(errc::kQueryFailed);
  ReindexResult result;
  std::int64_t after = 0;  // rk values start at 1
  if (!request.restart && state[0][0] == def.fingerprint) {
    after = ToInt(state[0][1]);
    if (after < 0) {  // completed by another process meanwhile
      result.done = true;
      result.remaining = 0;
      return result;
    }
  }
  if (request.count) {
    KAKEHASHI_TRY(Rows n,
                  Query("SELECT COUNT(*) FROM resources WHERE rk > ? AND deleted = 0", {after}));
    result.remaining = n.empty() ? 0 : ToInt(n[0][0]);
  }
  // `deleted <> 1` (deleted is 0 or 1) rather than `= 0`: without statistics (a database just
  // loaded, before autovacuum's ANALYZE) PostgreSQL estimates `= 0` to match 0.5 % of the rows
  // and sorted every remaining row per step (a bitmap scan: 635 ms a step at 100,000
  // resources) instead of reading the first ones of resources_by_rk.
  KAKEHASHI_TRY(Rows keys, Query("SELECT rk, type, id FROM resources WHERE rk > ? AND deleted <> 1 "
                                 "ORDER BY rk LIMIT ?",
                                 {after, static_cast<std::int64_t>(request.limit)}));
  if (keys.empty()) {
    KAKEHASHI_TRY_VOID(
        Exec("UPDATE kakehashi_index_state SET fingerprint = ?, done_rk = NULL "
             "WHERE id = 1",
             {def.fingerprint}));
    result.done = true;
    result.remaining = 0;
    return result;
  }
  const std::int64_t last = ToInt(keys.back()[0]);
  std::vector<std::int64_t> rks;
  rks.reserve(keys.size());
  for (const auto& k : keys) rks.push_back(ToInt(k[0]));
  if (pg) {
    // Writers of these resources wait for this step, and it for those already writing them
    // (LockAndRead's key); the JSON is read once the locks are held.
    // One statement for the step's keys (an array literal, each element quoted), taken in rk
    // order as before.
    std::string names = "{";
    for (const auto& k : keys) {
      if (names.size() > 1) names += ',';
      names += '"';
      for (const std::string* part : {&k[1], &k[2]}) {
        if (part == &k[2]) names += '/';
        for (char c : *part) {
          if (c == '"' || c == '\\') names += '\\';
          names += c;
        }
      }
      names += '"';
    }
    names += '}';
    KAKEHASHI_TRY_VOID(
        Exec("SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(CAST(? AS "
             "TEXT[])) WITH ORDINALITY AS u(k, n) ORDER BY n",
             {std::move(names)}));
  }
  KAKEHASHI_TRY(Rows rows, Query("SELECT rk, type, id, version, last_updated, deleted, json FROM "
                                 "resources WHERE rk > ? AND rk <= ? ORDER BY rk",
                                 {after, last}));
  // Only the locked resources: one created since (by this kakehashi) has its rows already.
  std::vector<std::int64_t> done;
  std::vector<std::pair<std::int64_t, ResourceRow>> current;
  for (auto& cols : rows) {
    const std::int64_t rk = ToInt(cols[0]);
    if (!std::binary_search(rks.begin(), rks.end(), rk)) continue;
    ResourceRow row = RowFrom(cols, 1);
    if (row.deleted) continue;  // deleted meanwhile: its rows went with it
    done.push_back(rk);
    current.emplace_back(rk, std::move(row));
  }
  // The entries are extracted on request.workers threads meanwhile (decision 0050); this thread
  // deletes the old rows and queues the new ones in rk order, as Write does.
  std::vector<const ResourceRow*> pointers;
  pointers.reserve(current.size());
  for (const auto& c : current) pointers.push_back(&c.second);
  ParallelExtract extract(def, pointers, request.workers);
  // Every row is queued (held), then compared per resource and table with the stored rows: a
  // table whose rows of a resource are the same is not touched, so a re-index writes only what
  // the new definition changed (decision 0050). A resource with nothing readable gets no rows.
  constexpr std::size_t kTables = std::size(kIndexTables);
  std::vector<std::vector<std::size_t>> bounds(kTables);
  for (auto& b : bounds) b.reserve(current.size() + 1);
  hold_pending_ = true;
  struct Release {
    bool& hold;
    ~Release() { hold = false; }
  } release{hold_pending_};
  for (std::size_t i = 0; i < current.size(); ++i) {
    for (std::size_t t = 0; t < kTables; ++t) bounds[t].push_back(pending_[t].rows);
    const IndexEntries* entries = nullptr;
    ++result.resources;
    switch (extract.Get(i, entries)) {
      case ParallelExtract::Outcome::kRows:
        if (auto r = QueueIndexRows(current[i].first, current[i].second, *entries); !r) {
          DropPending();
          return r.error();
        }
        break;
      case ParallelExtract::Outcome::kUnreadable: ++result.unreadable; break;
      case ParallelExtract::Outcome::kFailed:
        DropPending();
        return make_error_code(errc::kQueryFailed);
    }
  }
  for (std::size_t t = 0; t < kTables; ++t) bounds[t].push_back(pending_[t].rows);
  std::vector<unsigned char> changed(current.size(), 0);
  for (std::size_t t = 0; t < kTables; ++t) {
    if (auto r = ReplaceChangedRows(t, after, last, done, bounds[t], changed); !r) {
      DropPending();
      return r.error();
    }
  }
  result.changed = std::count(changed.begin(), changed.end(), 1);
  KAKEHASHI_TRY_VOID(FlushPending());
  KAKEHASHI_TRY_VOID(
      Exec("UPDATE kakehashi_index_state SET fingerprint = ?, done_rk = ? WHERE id "
           "= 1",
           {def.fingerprint, last}));
  if (result.remaining >= 0) result.remaining -= result.resources;
  return result;
}

namespace {

// The columns of each index table (kIndexTables order) in InsertSql's order, as a re-index step
// reads them back; `real` marks the REAL column, read as exact text (SQLite's own text of a
// REAL has 15 digits, printf without '!' at most 16; PostgreSQL's float8 text is exact).
struct StoredColumns {
  std::string_view sqlite;
  std::string_view postgres;
  std::size_t rk;  // position of rk
  int real;        // position of the REAL column, -1 none
};
constexpr StoredColumns kStoredColumns[] = {
    {"pid, system, code, rk", "pid, system, code, rk", 3, -1},
    {"pid, value, rk", "pid, value, rk", 2, -1},
    {"pid, prefix, last_updated, id, rk", "pid, prefix, last_updated, id, rk", 4, -1},
    {"pid, low, high, rk", "pid, low, high, rk", 3, -1},
    {"pid, target_type, target_id, rk", "pid, target_type, target_id, rk", 3, -1},
    {"pid, printf('%!.17g', value), system, code, rk", "pid, value, system, code, rk", 4, 1},
    {"pid, system1, code1, system2, code2, printf('%!.17g', num), low, high, rk",
     "pid, system1, code1, system2, code2, num, low, high, rk", 8, 5},
    {"rk, narrative, content", "rk, narrative, content", 0, -1},
};
static_assert(std::size(kStoredColumns) == std::size(kIndexTables));

// Changed resources' rows are deleted kDeleteChunk rks per statement (SQLite; the last list is
// padded with its last rk so the statement text, and its prepared statement, stay the same).
constexpr std::size_t kDeleteChunk = 100;

}  // namespace

Result<void> SqlSession::ReplaceChangedRows(std::size_t table, std::int64_t after,
                                            std::int64_t last, const std::vector<std::int64_t>& rks,
                                            const std::vector<std::size_t>& bounds,
                                            std::vector<unsigned char>& changed_flags) {
  const bool pg = dialect_ == Dialect::kPostgres;
  const StoredColumns& shape = kStoredColumns[table];
  std::string select = "SELECT ";
  select += pg ? shape.postgres : shape.sqlite;
  select += " FROM ";
  select += kIndexTables[table];
  std::string list;  // PostgreSQL array literal of the step's rks
  if (pg) {
    list = "{";
    for (std::size_t i = 0; i < rks.size(); ++i) {
      if (i > 0) list += ',';
      list += std::to_string(rks[i]);
    }
    list += '}';
    select += " WHERE rk = ANY(CAST(? AS BIGINT[])) ORDER BY rk";
  } else {  // under the write lock: the range holds the step's resources only
    select += " WHERE rk > ? AND rk <= ? ORDER BY rk";
  }
  KAKEHASHI_TRY(Rows stored, pg ? Query(select, {list}) : Query(select, {after, last}));
  // Per resource (rks ascending, as are the stored rows): its stored and its new rows as keys,
  // sorted; SQLite's tables are sets (INSERT OR IGNORE), PostgreSQL's keep duplicates.
  PendingRows& p = pending_[table];
  const std::size_t columns = p.rows == 0 ? 0 : p.params.size() / p.rows;
  std::vector<std::int64_t> changed;
  std::vector<std::size_t> keep;  // new rows to insert
  std::vector<std::string> old_keys;
  std::vector<std::string> new_keys;
  std::size_t s = 0;
  for (std::size_t i = 0; i < rks.size(); ++i) {
    old_keys.clear();
    new_keys.clear();
    while (s < stored.size() && ToInt(stored[s][shape.rk]) < rks[i]) ++s;  // not of the step
    for (; s < stored.size() && ToInt(stored[s][shape.rk]) == rks[i]; ++s) {
      old_keys.push_back(StoredRowKey(stored[s], shape.real));
    }
    for (std::size_t r = bounds[i]; r < bounds[i + 1]; ++r) {
      new_keys.push_back(QueuedRowKey(p.params, r * columns, columns));
    }
    std::sort(old_keys.begin(), old_keys.end());
    std::sort(new_keys.begin(), new_keys.end());
    if (!pg) new_keys.erase(std::unique(new_keys.begin(), new_keys.end()), new_keys.end());
    if (old_keys == new_keys) continue;
    changed_flags[i] = 1;
    changed.push_back(rks[i]);
    for (std::size_t r = bounds[i]; r < bounds[i + 1]; ++r) keep.push_back(r);
  }
  if (kIndexTables[table] == "idx_text") {
    // SQLite's FTS5 index is fed from idx_text at FlushPending for the rks QueueIndexRows
    // queued (decision 0048): only the rewritten rows (their old entries leave through the
    // delete trigger); an unchanged row has its entries already.
    std::erase_if(text_queue_, [&](std::int64_t rk) {
      return !std::binary_search(changed.begin(), changed.end(), rk);
    });
  }
  if (changed.empty()) {
    p.params.clear();
    p.rows = 0;
    return {};
  }
  if (pg) {
    std::string changed_list = "{";
    for (std::size_t i = 0; i < changed.size(); ++i) {
      if (i > 0) changed_list += ',';
      changed_list += std::to_string(changed[i]);
    }
    changed_list += '}';
    KAKEHASHI_TRY_VOID(Exec(
        "DELETE FROM " + std::string(kIndexTables[table]) + " WHERE rk = ANY(CAST(? AS BIGINT[]))",
        {changed_list}));
  } else {
    std::string sql = "DELETE FROM " + std::string(kIndexTables[table]) + " WHERE rk IN (?";
    for (std::size_t i = 1; i < kDeleteChunk; ++i) sql += ", ?";
    sql += ")";
    std::vector<Param> chunk;
    for (std::size_t first = 0; first < changed.size(); first += kDeleteChunk) {
      chunk.clear();
      for (std::size_t i = 0; i < kDeleteChunk; ++i) {
        chunk.emplace_back(changed[std::min(first + i, changed.size() - 1)]);
      }
      KAKEHASHI_TRY_VOID(Exec(sql, chunk));
    }
  }
  if (keep.size() != p.rows) {
    std::vector<Param> kept;
    kept.reserve(keep.size() * columns);
    for (std::size_t r : keep) {
      for (std::size_t c = 0; c < columns; ++c)
        kept.push_back(std::move(p.params[r * columns + c]));
    }
    p.params = std::move(kept);
    p.rows = keep.size();
  }
  return FlushTable(table);
}

// Savepoints (store.hpp): queued rows are flushed at both ends, so that a savepoint's rows are
// in the database when it is released (a conflict is reported for its part) and rolling back
// to it has only its own queued rows to drop.
Result<void> SqlSession::Savepoint(std::string_view name) {
  if (!InTransaction()) return make_error_code(errc::kNotInTransaction);
  if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyz_") != name.npos) {
    return make_error_code(errc::kQueryFailed);
  }
  KAKEHASHI_TRY_VOID(FlushPending(/*text_index=*/false));
  KAKEHASHI_TRY_VOID(Exec("SAVEPOINT " + std::string(name), {}));
  text_marks_.push_back({std::string(name), {}});
  return {};
}

namespace {

// The innermost open savepoint called `name` (as SQLite finds it), or marks.size().
template <typename Marks>
std::size_t FindMark(const Marks& marks, std::string_view name) {
  for (std::size_t i = marks.size(); i > 0; --i) {
    if (marks[i - 1].name == name) return i - 1;
  }
  return marks.size();
}

}  // namespace

Result<void> SqlSession::ReleaseSavepoint(std::string_view name) {
  if (!InTransaction()) return make_error_code(errc::kNotInTransaction);
  KAKEHASHI_TRY_VOID(FlushPending(/*text_index=*/false));
  KAKEHASHI_TRY_VOID(Exec("RELEASE SAVEPOINT " + std::string(name), {}));
  // Its FTS5 rows (and those of the savepoints inside it) now belong to the enclosing one.
  const std::size_t at = FindMark(text_marks_, name);
  if (at > 0) {
    auto& outer = text_marks_[at - 1].flushed;
    for (std::size_t i = at; i < text_marks_.size(); ++i) {
      outer.insert(outer.end(), text_marks_[i].flushed.begin(), text_marks_[i].flushed.end());
    }
  }
  text_marks_.resize(at);
  return {};
}

Result<void> SqlSession::RollbackToSavepoint(std::string_view name) {
  DropPending();
  if (!InTransaction()) return make_error_code(errc::kNotInTransaction);
  KAKEHASHI_TRY_VOID(Exec("ROLLBACK TO SAVEPOINT " + std::string(name), {}));
  // The FTS5 rows given since the savepoint began are undone: queue their rks again.
  const std::size_t at = FindMark(text_marks_, name);
  for (std::size_t i = at; i < text_marks_.size(); ++i) {
    text_queue_.insert(text_queue_.end(), text_marks_[i].flushed.begin(),
                       text_marks_[i].flushed.end());
  }
  text_marks_.resize(at);
  return Exec("RELEASE SAVEPOINT " + std::string(name), {});
}

// Import checkpoints (store.hpp). Not part of the versioned schema: the table belongs to the
// importer and is created on first use, identical on both backends ("IF NOT EXISTS" and
// "ON CONFLICT … DO UPDATE" are SQLite >= 3.24 and PostgreSQL >= 9.5 syntax alike).
//
// PostgreSQL: two sessions creating the tables at once (two first imports, decision 0023) would
// both pass "IF NOT EXISTS" and the second fail on the catalog's unique index (pg_type, 23505).
// So creating is one statement (a DO block: its own transaction outside one) that, while the
// tables are missing, first takes a transaction-scoped advisory lock: the second creator waits
// until the first has committed and then finds the tables (decision 0028). Once they exist no
// lock is taken.
Result<void> SqlSession::EnsureCheckpointTable() {
  if (checkpoint_table_) return {};
  const bool pg = dialect_ == Dialect::kPostgres;
  const std::string text = pg ? "TEXT COLLATE \"C\"" : "TEXT";
  const std::string checkpoints = "CREATE TABLE IF NOT EXISTS import_checkpoints (source " + text +
                                  " NOT NULL, unit " + text +
                                  " NOT NULL, fingerprint TEXT NOT NULL, done_at BIGINT NOT NULL, "
                                  "PRIMARY KEY (source, unit))";
  const std::string resources = "CREATE TABLE IF NOT EXISTS import_unit_resources (source " + text +
                                " NOT NULL, unit " + text +
                                " NOT NULL, resources TEXT NOT NULL, PRIMARY KEY (source, unit))";
  // Which sources hold a unit (CheckpointSources: the importer's other roots of a patient
  // folder, decision 0026). Added in session 8: "IF NOT EXISTS" also adds it to a database
  // written before (on PostgreSQL under the same lock, its absence opening the block).
  const std::string unit_index =
      "CREATE INDEX IF NOT EXISTS import_checkpoints_unit ON import_checkpoints (unit, source)";
  if (pg) {
    KAKEHASHI_TRY_VOID(
        Exec("DO $kk$ BEGIN IF to_regclass('import_checkpoints') IS NULL OR "
             "to_regclass('import_unit_resources') IS NULL OR "
             "to_regclass('import_checkpoints_unit') IS NULL THEN PERFORM "
             "pg_advisory_xact_lock(7401747); " +
                 checkpoints + "; " + resources + "; " + unit_index + "; END IF; END $kk$",
             {}));
  } else {
    KAKEHASHI_TRY_VOID(Exec(checkpoints, {}));
    KAKEHASHI_TRY_VOID(Exec(resources, {}));
    KAKEHASHI_TRY_VOID(Exec(unit_index, {}));
  }
  if (!InTransaction()) checkpoint_table_ = true;  // a rolled-back CREATE is undone
  return {};
}

Result<std::vector<std::pair<std::string, std::string>>> SqlSession::ReadCheckpoints(
    std::string_view source) {
  KAKEHASHI_TRY_VOID(EnsureCheckpointTable());
  KAKEHASHI_TRY(Rows rows, Query("SELECT unit, fingerprint FROM import_checkpoints WHERE "
                                 "source = ? ORDER BY unit",
                                 {std::string(source)}));
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(rows.size());
  for (auto& r : rows) out.emplace_back(std::move(r[0]), std::move(r[1]));
  return out;
}

Result<void> SqlSession::WriteCheckpoint(std::string_view source, std::string_view unit,
                                         std::string_view fingerprint) {
  if (!InTransaction()) return make_error_code(errc::kNotInTransaction);
  KAKEHASHI_TRY_VOID(EnsureCheckpointTable());
  const auto now_us = std::chrono::duration_cast<std::chrono::microseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  return Exec(
      "INSERT INTO import_checkpoints (source, unit, fingerprint, done_at) VALUES (?, ?, ?, ?) "
      "ON CONFLICT (source, unit) DO UPDATE SET fingerprint = excluded.fingerprint, done_at = "
      "excluded.done_at",
      {std::string(source), std::string(unit), std::string(fingerprint),
       static_cast<std::int64_t>(now_us)});
}

Result<std::optional<std::string>> SqlSession::ReadCheckpoint(std::string_view source,
                                                              std::string_view unit) {
  KAKEHASHI_TRY_VOID(EnsureCheckpointTable());
  KAKEHASHI_TRY(Rows rows, Query("SELECT fingerprint FROM import_checkpoints WHERE source = ? AND "
                                 "unit = ?",
                                 {std::string(source), std::string(unit)}));
  if (rows.empty()) return std::optional<std::string>();
  return std::optional<std::string>(std::move(rows[0][0]));
}

Result<std::vector<std::string>> SqlSession::CheckpointSources(std::string_view unit) {
  KAKEHASHI_TRY_VOID(EnsureCheckpointTable());
  KAKEHASHI_TRY(Rows rows, Query("SELECT source FROM import_checkpoints WHERE unit = ? ORDER BY "
                                 "source",
                                 {std::string(unit)}));
  std::vector<std::string> out;
  out.reserve(rows.size());
  for (auto& r : rows) out.push_back(std::move(r[0]));
  return out;
}

// The readiness check's statement (Session::SchemaVersion): one primary-key lookup of a table
// of ~10 rows, answered by the database itself (PostgreSQL: a round trip on the connection).
Result<int> SqlSession::SchemaVersion() {
  KAKEHASHI_TRY(Rows rows, Query("SELECT MAX(version) FROM kakehashi_migrations", {}));
  int version = 0;
  if (!rows.empty() && !rows[0].empty()) {
    const std::string& text = rows[0][0];
    std::from_chars(text.data(), text.data() + text.size(), version);
  }
  return version;
}

Result<std::size_t> SqlSession::CountCheckpoints(std::string_view source) {
  KAKEHASHI_TRY_VOID(EnsureCheckpointTable());
  KAKEHASHI_TRY(Rows rows, Query("SELECT COUNT(*) FROM import_checkpoints WHERE source = ?",
                                 {std::string(source)}));
  std::size_t count = 0;
  if (!rows.empty() && !rows[0].empty()) {
    const std::string& text = rows[0][0];
    std::from_chars(text.data(), text.data() + text.size(), count);
  }
  return count;
}

// Keyset paging on the primary key (source, unit): each page is one range scan of the index,
// whatever page it is (no OFFSET). Units compare bytewise on both backends (SQLite's BINARY
// collation, PostgreSQL's COLLATE "C" columns), as the ORDER BY does.
Result<std::vector<std::pair<std::string, std::string>>> SqlSession::ReadCheckpointsAfter(
    std::string_view source, std::string_view after, std::size_t limit) {
  KAKEHASHI_TRY_VOID(EnsureCheckpointTable());
  KAKEHASHI_TRY(Rows rows,
                Query("SELECT unit, fingerprint FROM import_checkpoints WHERE "
                      "source = ? AND unit > ? ORDER BY unit LIMIT ?",
                      {std::string(source), std::string(after), static_cast<std::int64_t>(limit)}));
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(rows.size());
  for (auto& r : rows) out.emplace_back(std::move(r[0]), std::move(r[1]));
  return out;
}

Result<void> SqlSession::WriteUnitResources(std::string_view source, std::string_view unit,
                                            std::string_view resources) {
  if (!InTransaction()) return make_error_code(errc::kNotInTransaction);
  KAKEHASHI_TRY_VOID(EnsureCheckpointTable());
  return Exec(
      "INSERT INTO import_unit_resources (source, unit, resources) VALUES (?, ?, ?) "
      "ON CONFLICT (source, unit) DO UPDATE SET resources = excluded.resources",
      {std::string(source), std::string(unit), std::string(resources)});
}

Result<std::string> SqlSession::ReadUnitResources(std::string_view source, std::string_view unit) {
  KAKEHASHI_TRY_VOID(EnsureCheckpointTable());
  KAKEHASHI_TRY(Rows rows, Query("SELECT resources FROM import_unit_resources WHERE source = ? "
                                 "AND unit = ?",
                                 {std::string(source), std::string(unit)}));
  if (rows.empty()) return std::string();
  return std::move(rows[0][0]);
}

Result<void> SqlSession::DeleteCheckpoint(std::string_view source, std::string_view unit) {
  if (!InTransaction()) return make_error_code(errc::kNotInTransaction);
  KAKEHASHI_TRY_VOID(EnsureCheckpointTable());
  KAKEHASHI_TRY_VOID(Exec("DELETE FROM import_checkpoints WHERE source = ? AND unit = ?",
                          {std::string(source), std::string(unit)}));
  return Exec("DELETE FROM import_unit_resources WHERE source = ? AND unit = ?",
              {std::string(source), std::string(unit)});
}

}  // namespace kakehashi::gateway::store::detail
