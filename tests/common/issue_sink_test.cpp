#include "kakehashi/common/issue_sink.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace kakehashi;

TEST_CASE("FailFastSink stops at the first issue at or above its threshold", "[common][sink]") {
  FailFastSink sink;
  sink.Warning("x.warn", {}, "suspect");
  CHECK_FALSE(sink.StopRequested());
  sink.Error("x.err", {}, "bad");
  sink.Fatal("x.fatal", {}, "worse");
  REQUIRE(sink.StopRequested());
  CHECK(sink.First()->code == "x.err");
  CHECK(sink.Counts().Total() == 3);
  CHECK(sink.Counts().Errors() == 2);
}

TEST_CASE("CollectingSink keeps issues up to a bound and counts all", "[common][sink]") {
  CollectingSink sink(2);
  sink.Info("a", {}, "1");
  sink.Info("a", {}, "2");
  sink.Error("b", {}, "3");
  CHECK(sink.Issues().size() == 2);
  CHECK(sink.Dropped() == 1);
  CHECK(sink.HasErrors());
  CHECK(sink.Counts().ByCode().at("a") == 2);
  CHECK(sink.Counts().Count(Severity::kInformation) == 2);
  sink.Clear();
  CHECK(sink.Counts().Total() == 0);
}

TEST_CASE("IssueSink::Keeps and CountOnly: counted issues are not built", "[common][sink]") {
  // A sink that keeps everything (the default) gets a counted issue as a report with its field.
  CollectingSink all;
  CHECK(all.Keeps(Severity::kInformation));
  all.CountOnly(Severity::kWarning, "x.counted", "PID-3");
  REQUIRE(all.Issues().size() == 1);
  CHECK(all.Issues()[0].severity == Severity::kWarning);
  CHECK(all.Issues()[0].code == "x.counted");
  CHECK(all.Issues()[0].where.field == "PID-3");
  CHECK(all.Counts().Count(Severity::kWarning) == 1);
  // NullSink keeps nothing, so producers skip building what it would drop.
  NullSink none;
  CHECK_FALSE(none.Keeps(Severity::kFatal));
  CHECK_FALSE(none.Keeps(Severity::kInformation));
  none.CountOnly(Severity::kError, "x.counted", "");
}

TEST_CASE("RejectStore keeps the raw bytes and a sidecar without values", "[common][sink]") {
  const auto dir = std::filesystem::temp_directory_path() / "kakehashi_reject_test";
  std::filesystem::remove_all(dir);
  CollectingSink next;
  RejectStore store(dir, next);
  Location where;
  where.source = "in.hl7";
  where.record = "MSG1";
  store.Error("hl7v2.msh.truncated", where, "MSH is shorter than 12 fields");
  const std::string raw = "MSH|^~\\&|broken\r";
  auto path = store.Reject(raw, where);
  REQUIRE(path);
  CHECK(next.Issues().size() == 1);  // forwarded
  std::ifstream in(*path, std::ios::binary);
  std::stringstream body;
  body << in.rdbuf();
  CHECK(body.str() == raw);
  auto sidecar = *path;
  sidecar.replace_extension(".issues.tsv");
  std::ifstream side(sidecar);
  std::stringstream text;
  text << side.rdbuf();
  CHECK(text.str().find("error\thl7v2.msh.truncated\tin.hl7 record MSG1") != std::string::npos);
  // Same bytes -> same file: replays do not pile up copies.
  auto again = store.Reject(raw, where);
  REQUIRE(again);
  CHECK(*again == *path);
  CHECK(store.RejectedCount() == 2);
  std::filesystem::remove_all(dir);
}
