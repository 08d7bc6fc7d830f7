// The "ssmix2" adapter: detection, the records of the bundled sample store (deciding files only,
// condition flags as SSMIX2.action), single files, registration.
#include "kakehashi/adapters/ssmix2/adapter.hpp"

#include "kakehashi/common/errc.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace {

namespace adapters = kakehashi::adapters;
namespace fs = std::filesystem;

const fs::path kRoot = fs::path(KAKEHASHI_SOURCE_DIR) / "samples/ssmix2/constructed/standard_root";

TEST_CASE("ssmix2 adapter: detection", "[ssmix2][adapter]") {
  auto adapter = adapters::ssmix2::MakeAdapter();
  CHECK(adapter->Name() == "ssmix2");
  adapters::Probe dir;
  dir.path = kRoot;
  dir.is_directory = true;
  CHECK(adapter->Score(dir) == 60);
  adapters::Probe file;
  file.path = "x/0012345678_-_ADT-00_999999999999999_20240401093000123_-_1";
  file.head = "MSH|^~\\&|";
  CHECK(adapter->Score(file) == 95);
  file.path = "x/message.hl7";
  CHECK(adapter->Score(file) == 0);

  adapters::Registry registry;
  adapters::RegisterBuiltinAdapters(registry);
  REQUIRE(registry.Find("ssmix2") != nullptr);
  auto probe = adapters::MakeProbe(kRoot);
  REQUIRE(probe.has_value());
  auto detected = registry.Detect(*probe);
  REQUIRE(detected.adapter != nullptr);
  CHECK(detected.adapter->Name() == "ssmix2");
}

TEST_CASE("ssmix2 adapter: the sample store's records", "[ssmix2][adapter]") {
  auto adapter = adapters::ssmix2::MakeAdapter();
  kakehashi::CollectingSink issues;
  auto source = adapter->Open({kRoot, ""}, {}, issues);
  REQUIRE(source.has_value());
  std::vector<std::string> seen;
  while (true) {
    auto record = (*source)->Next(issues);
    REQUIRE(record.has_value());
    if (!*record) break;
    const auto& r = **record;
    CHECK(r.Kind() == "ssmix2");
    CHECK(r.Where().source.starts_with("ssmix2:001/234/0012345678/"));
    seen.push_back(*r.GetText("SSMIX2.data_type") + " " + *r.GetText("SSMIX2.action") + " " +
                   r.GetText("MSH-10").value_or("?"));
  }
  // Six files: the superseded ADT-00 (_2) is not a record; the _0 order is a delete.
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<std::string>{"ADT-00 upsert C0001", "OML-11 upsert C0005",
                                         "OMP-01 delete C0004", "OMP-01 upsert C0003",
                                         "PPR-01 upsert C0002"});
  CHECK_FALSE(issues.HasErrors());
  // A missing path.
  CHECK(adapter->Open({kRoot / "nothing", ""}, {}, issues).error() ==
        kakehashi::common::errc::kNotFound);
}

TEST_CASE("ssmix2 adapter: one file inside a store", "[ssmix2][adapter]") {
  auto adapter = adapters::ssmix2::MakeAdapter();
  kakehashi::CollectingSink issues;
  const fs::path file =
      kRoot /
      "001/234/0012345678/-/ADT-00/0012345678_-_ADT-00_999999999999999_20240301100000000_-_2";
  auto source = adapter->Open({file, ""}, {}, issues);
  REQUIRE(source.has_value());
  auto record = (*source)->Next(issues);
  REQUIRE(record.has_value());
  REQUIRE(*record);
  // The _2 file's key has a current _1 sibling: that file decides.
  CHECK((*record)->GetText("MSH-10") == "C0001");
  CHECK((*record)->GetText("SSMIX2.action") == "upsert");
  auto end = (*source)->Next(issues);
  REQUIRE(end.has_value());
  CHECK(*end == nullptr);
}

}  // namespace
