#include "kakehashi/adapters/hl7v2/adapter.hpp"

#include "kakehashi/common/errc.hpp"

#include <catch2/catch.hpp>

#include <unistd.h>
#include <algorithm>
#include <filesystem>
#include <fstream>

namespace {

namespace adapters = kakehashi::adapters;

std::filesystem::path TempFile(const std::string& name, const std::string& bytes) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("kakehashi_hl7v2_adapter_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

}  // namespace

TEST_CASE("adapters: hl7v2 adapter scores and opens a file", "[adapters][hl7v2]") {
  const auto adapter = adapters::hl7v2::MakeAdapter();
  adapters::Probe probe;
  probe.head = "\x0BMSH|^~\\&|HIS";
  CHECK(adapter->Score(probe) == 90);
  probe.head = "\xEF\xBB\xBFMSH|^~\\&|";
  CHECK(adapter->Score(probe) == 90);
  probe.head = "FHS|^~\\&";
  CHECK(adapter->Score(probe) == 80);
  probe.head = "junk\rMSH|^~\\&";
  CHECK(adapter->Score(probe) == 40);
  probe.head = "MSHX";
  CHECK(adapter->Score(probe) == 0);
  probe.head = "{\"resourceType\":\"Patient\"}";
  CHECK(adapter->Score(probe) == 0);
  probe.is_directory = true;
  probe.head.clear();
  CHECK(adapter->Score(probe) == 0);

  const auto path = TempFile("two.hl7",
                             "MSH|^~\\&|A||||1||ADT^A08|C1|P|2.5||||||UNICODE UTF-8\r"
                             "PID|1||ID1||山本^太郎\r"
                             "MSH|^~\\&|A||||1||ADT^A08|C2|P|2.5||||||UNICODE UTF-8\r"
                             "PID|1||ID2||佐藤^花子\r");
  auto made = adapters::MakeProbe(path);
  REQUIRE(made.has_value());
  CHECK(adapter->Score(*made) == 90);
  kakehashi::CollectingSink sink;
  auto source = adapter->Open({path, "two.hl7"}, {}, sink);
  REQUIRE(source.has_value());
  auto first = (*source)->Next(sink);
  REQUIRE(first.has_value());
  REQUIRE(*first != nullptr);
  CHECK((*first)->Kind() == "hl7v2");
  CHECK((*first)->GetText("PID-5.1") == "山本");
  CHECK_FALSE((*first)->GetText("PID-99").has_value());
  CHECK((*first)->Where().record == "C1");
  CHECK((*first)->Where().source == "two.hl7");
  const auto unused = (*first)->UnusedFields();
  CHECK(std::find(unused.begin(), unused.end(), "PID-3") != unused.end());
  auto second = (*source)->Next(sink);
  REQUIRE(second.has_value());
  REQUIRE(*second != nullptr);
  const auto* record = dynamic_cast<const adapters::hl7v2::MessageRecord*>(second->get());
  REQUIRE(record != nullptr);
  CHECK(record->GetMessage().ControlId() == "C2");
  auto end = (*source)->Next(sink);
  REQUIRE(end.has_value());
  CHECK(*end == nullptr);
  CHECK(sink.Issues().empty());

  CHECK(adapters::MakeProbe(path.parent_path() / "missing.hl7").error() ==
        kakehashi::common::make_error_code(kakehashi::common::errc::kNotFound));
  CHECK_FALSE(adapter->Open({path.parent_path() / "missing.hl7", ""}, {}, sink).has_value());
  std::filesystem::remove_all(path.parent_path());
}
