#include "kakehashi/adapters/adapter.hpp"

#include "kakehashi/adapters/hl7v2/adapter.hpp"  // RegisterBuiltinAdapters check
#include "kakehashi/common/errc.hpp"

#include <catch2/catch.hpp>

namespace {

namespace adapters = kakehashi::adapters;

class FixedAdapter final : public adapters::Adapter {
 public:
  FixedAdapter(std::string name, int score) : name_(std::move(name)), score_(score) {}
  std::string_view Name() const override { return name_; }
  int Score(const adapters::Probe&) const override { return score_; }
  kakehashi::Result<std::unique_ptr<adapters::RecordSource>> Open(
      const adapters::SourceSpec&, const adapters::Options&, kakehashi::IssueSink&) const override {
    return kakehashi::common::make_error_code(kakehashi::common::errc::kUnsupported);
  }

 private:
  std::string name_;
  int score_;
};

}  // namespace

TEST_CASE("adapters: registry detection, ties and names", "[adapters]") {
  adapters::Registry registry;
  CHECK(registry.Add(std::make_unique<FixedAdapter>("a", 10)));
  CHECK(registry.Add(std::make_unique<FixedAdapter>("b", 50)));
  CHECK_FALSE(registry.Add(std::make_unique<FixedAdapter>("a", 99)));  // duplicate name
  CHECK(registry.Names() == std::vector<std::string_view>{"a", "b"});
  adapters::Probe probe;
  auto d = registry.Detect(probe);
  REQUIRE(d.adapter != nullptr);
  CHECK(d.adapter->Name() == "b");
  CHECK(d.score == 50);
  CHECK(d.tied.empty());
  CHECK(registry.Add(std::make_unique<FixedAdapter>("c", 50)));
  d = registry.Detect(probe);
  CHECK(d.adapter == nullptr);
  CHECK(d.tied == std::vector<std::string_view>{"b", "c"});
  adapters::Registry empty;
  CHECK(empty.Detect(probe).adapter == nullptr);
}

TEST_CASE("adapters: builtin registration includes hl7v2", "[adapters]") {
  adapters::Registry registry;
  adapters::RegisterBuiltinAdapters(registry);
  REQUIRE(registry.Find("hl7v2") != nullptr);
}
