// bench_search_plan DB.sqlite [REPS] SEARCH...
//
// The SQLite side of bench/bench_chain_search.sh: for each SEARCH ("Patient?name=..." as after
// /fhir/, percent-encoded), the statement SqlSession::Search (or Count for _summary=count) runs
// for it on the SQLite store DB (built by BuildSearch and SearchSql, the same code the server
// runs; the store's own search keys), its plan (EXPLAIN QUERY PLAN, one line per step, indented
// by depth) and the thread CPU time of one execution (the median of REPS, default 5, run to the
// last row; with `_text`/`_content` or chains, SqlSession::Search's counts for its plan choices
// (common terms, decision 0041; chains, decision 0042) before it and their CPU time). Token :in is
// served by the built-in terminology tables, as `serve` does. BENCH_PLAN=session13 prints the
// statements of session 13 instead (no chain plan, rare terms searched in the trigram index again).
#include "kakehashi/gateway/terminology_ops.hpp"
#include "kakehashi/terminology/code_systems.hpp"
#include "kakehashi/terminology/store.hpp"
#include "search.hpp"
#include "store/sql_session.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>
#include <vector>

namespace {

using namespace kakehashi;
using gateway::store::detail::Param;

double ThreadCpuUs() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) / 1e3;
}

sqlite3_stmt* Prepare(sqlite3* db, const std::string& sql, const std::vector<Param>& params) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "bench_search_plan: %s\n", sqlite3_errmsg(db));
    std::exit(1);
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    const int at = static_cast<int>(i) + 1;
    if (const auto* s = std::get_if<std::string>(&params[i])) {
      sqlite3_bind_text(stmt, at, s->data(), static_cast<int>(s->size()), SQLITE_TRANSIENT);
    } else if (const auto* n = std::get_if<std::int64_t>(&params[i])) {
      sqlite3_bind_int64(stmt, at, *n);
    } else {
      sqlite3_bind_double(stmt, at, std::get<double>(params[i]));
    }
  }
  return stmt;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: bench_search_plan DB.sqlite REPS SEARCH...\n");
    return 2;
  }
  const int reps = std::max(1, std::atoi(argv[2]));
  // BENCH_PLAN=session13: the statements before decision 0042 (chains read by value, a rare
  // term's trigram candidates searched again after they were read), for before/after figures.
  const char* plan_env = std::getenv("BENCH_PLAN");
  const bool session13 = plan_env != nullptr && std::string(plan_env) == "session13";
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(argv[1], &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    std::fprintf(stderr, "bench_search_plan: cannot open %s\n", argv[1]);
    return 1;
  }
  gateway::store::detail::Rows key_rows;
  {
    sqlite3_stmt* s = Prepare(db, "SELECT pid, type, param FROM search_keys", {});
    while (sqlite3_step(s) == SQLITE_ROW) {
      key_rows.push_back({});
      for (int c = 0; c < 3; ++c) {
        key_rows.back().emplace_back(reinterpret_cast<const char*>(sqlite3_column_text(s, c)));
      }
    }
    sqlite3_finalize(s);
  }
  const gateway::store::detail::ParamKeys keys(key_rows);
  CollectingSink sink;
  auto terms = terminology::TerminologyStore::Open(
      terminology::TerminologyStore::Options{}, terminology::CodeSystemRegistry::Builtin(), sink);
  if (!terms) return 1;
  const gateway::ValueSetCodes value_sets = gateway::TerminologyValueSetCodes(**terms);
  const gateway::detail::SearchContext context{"http://localhost/fhir", 20, 1000, &value_sets};

  for (int a = 3; a < argc; ++a) {
    const std::string search = argv[a];
    const std::size_t q = search.find('?');
    const std::string type = search.substr(0, q);
    gateway::detail::SearchSpec spec;
    if (auto failure = gateway::detail::BuildSearch(
            type, gateway::detail::ParseQuery(q == std::string::npos ? "" : search.substr(q + 1)),
            context, spec)) {
      std::printf("%s: refused (%d)\n", search.c_str(), failure->status);
      continue;
    }
    // As SqlSession::Search: common `_text`/`_content` terms checked per resource.
    auto run = [db](std::string_view text,
                    const std::vector<Param>& values) -> Result<gateway::store::detail::Rows> {
      gateway::store::detail::Rows rows;
      sqlite3_stmt* s = Prepare(db, std::string(text), values);
      while (sqlite3_step(s) == SQLITE_ROW) {
        rows.emplace_back();
        for (int c = 0; c < sqlite3_column_count(s); ++c) {
          const auto* v = reinterpret_cast<const char*>(sqlite3_column_text(s, c));
          rows.back().emplace_back(v != nullptr ? v : "");
        }
      }
      sqlite3_finalize(s);
      return rows;
    };
    const double probe0 = ThreadCpuUs();
    if (!spec.summary_count) {
      auto adapted = gateway::store::detail::CommonTextProbes(spec.query, run);
      if (adapted && *adapted) spec.query = std::move(**adapted);
      if (session13) {
        for (auto& any : spec.query.where) {
          for (auto& p : any) p.candidates.reset();
        }
      } else {
        // As SqlSession::Search: chains counted and marked (decision 0042).
        auto chained = gateway::store::detail::PlanChains(
            spec.query, gateway::store::detail::Dialect::kSqlite, keys, run);
        if (chained && *chained) spec.query = std::move(**chained);
      }
    }
    const double probe_us = ThreadCpuUs() - probe0;
    std::string sql;
    std::vector<Param> params;
    if (spec.summary_count) {
      gateway::store::detail::CountSql(spec.query, gateway::store::detail::Dialect::kSqlite, keys,
                                       sql, params);
    } else {
      gateway::store::detail::SearchSql(spec.query, gateway::store::detail::Dialect::kSqlite, keys,
                                        sql, params);
    }
    std::vector<double> cpu;
    std::size_t rows = 0;
    for (int r = 0; r < reps; ++r) {
      sqlite3_stmt* s = Prepare(db, sql, params);
      const double t0 = ThreadCpuUs();
      rows = 0;
      while (sqlite3_step(s) == SQLITE_ROW) ++rows;
      cpu.push_back(ThreadCpuUs() - t0);
      sqlite3_finalize(s);
    }
    std::sort(cpu.begin(), cpu.end());
    std::printf("%s\n  rows %zu, SQL CPU %.0f us (median of %d)", search.c_str(), rows,
                cpu[cpu.size() / 2], reps);
    if (probe_us >= 1) std::printf(", plan counts (common terms, chains) %.0f us", probe_us);
    std::printf("\n");
    sqlite3_stmt* s = Prepare(db, "EXPLAIN QUERY PLAN " + sql, params);
    std::map<int, int> depth;  // step id -> depth
    while (sqlite3_step(s) == SQLITE_ROW) {
      const int id = sqlite3_column_int(s, 0);
      const int parent = sqlite3_column_int(s, 1);
      depth[id] = parent == 0 ? 1 : depth[parent] + 1;
      std::printf("%*s%s\n", 2 * depth[id], "",
                  reinterpret_cast<const char*>(sqlite3_column_text(s, 3)));
    }
    sqlite3_finalize(s);
  }
  sqlite3_close(db);
  return 0;
}
