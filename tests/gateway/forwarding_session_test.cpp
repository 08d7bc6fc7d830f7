// store::ForwardingSession: every call of store::Session reaches the inner session, the optional
// ones too (before it, the test decorators' copy answered Referenced, CountReferenced, the
// checkpoint calls and ReindexStep with store::Session's errc::kUnsupported).
#include "kakehashi/gateway/store/forwarding_session.hpp"

#include "test_support.hpp"

#include <set>
#include <string>

namespace kakehashi::gateway::store {
namespace {

// Records the name of every call; answers each with a value of its own.
class RecordingSession final : public Session {
 public:
  explicit RecordingSession(std::set<std::string>& calls) : calls_(calls) {}
  Result<std::optional<ResourceRow>> Read(std::string_view, std::string_view id) override {
    calls_.insert("Read");
    ResourceRow row;
    row.type = "Patient";
    row.id = std::string(id);
    return std::optional<ResourceRow>(std::move(row));
  }
  Result<std::optional<ResourceRow>> ReadVersion(std::string_view, std::string_view,
                                                 std::int64_t) override {
    calls_.insert("ReadVersion");
    return std::optional<ResourceRow>();
  }
  Result<std::vector<HistoryRow>> History(const HistoryQuery&) override {
    calls_.insert("History");
    return std::vector<HistoryRow>(2);
  }
  Result<std::vector<ResourceRow>> Search(const SearchQuery&) override {
    calls_.insert("Search");
    return std::vector<ResourceRow>(3);
  }
  Result<std::int64_t> Count(const SearchQuery&) override {
    calls_.insert("Count");
    return 4;
  }
  Result<std::vector<ResourceRow>> Referenced(const ReferencedQuery&) override {
    calls_.insert("Referenced");
    return std::vector<ResourceRow>(5);
  }
  Result<std::int64_t> CountReferenced(const ReferencedQuery&) override {
    calls_.insert("CountReferenced");
    return 6;
  }
  Result<void> Begin() override { return Record("Begin"); }
  Result<void> Commit() override { return Record("Commit"); }
  void Rollback() noexcept override { calls_.insert("Rollback"); }
  Result<std::optional<ResourceRow>> LockAndRead(std::string_view, std::string_view) override {
    calls_.insert("LockAndRead");
    return std::optional<ResourceRow>();
  }
  Result<void> LockMany(std::span<const ResourceKey>) override { return Record("LockMany"); }
  Result<void> Write(const ResourceRow&, const IndexEntries&) override { return Record("Write"); }
  Result<void> Savepoint(std::string_view) override { return Record("Savepoint"); }
  Result<void> ReleaseSavepoint(std::string_view) override { return Record("ReleaseSavepoint"); }
  Result<void> RollbackToSavepoint(std::string_view) override {
    return Record("RollbackToSavepoint");
  }
  Result<std::vector<std::pair<std::string, std::string>>> ReadCheckpoints(
      std::string_view) override {
    calls_.insert("ReadCheckpoints");
    return std::vector<std::pair<std::string, std::string>>{{"unit", "fp"}};
  }
  Result<void> WriteCheckpoint(std::string_view, std::string_view, std::string_view) override {
    return Record("WriteCheckpoint");
  }
  Result<std::optional<std::string>> ReadCheckpoint(std::string_view, std::string_view) override {
    calls_.insert("ReadCheckpoint");
    return std::optional<std::string>("fp");
  }
  Result<std::vector<std::string>> CheckpointSources(std::string_view) override {
    calls_.insert("CheckpointSources");
    return std::vector<std::string>{"a", "b"};
  }
  Result<std::size_t> CountCheckpoints(std::string_view) override {
    calls_.insert("CountCheckpoints");
    return std::size_t{7};
  }
  Result<std::vector<std::pair<std::string, std::string>>> ReadCheckpointsAfter(
      std::string_view, std::string_view, std::size_t) override {
    calls_.insert("ReadCheckpointsAfter");
    return std::vector<std::pair<std::string, std::string>>(8);
  }
  Result<void> WriteUnitResources(std::string_view, std::string_view, std::string_view) override {
    return Record("WriteUnitResources");
  }
  Result<std::string> ReadUnitResources(std::string_view, std::string_view) override {
    calls_.insert("ReadUnitResources");
    return std::string("Patient/p1");
  }
  Result<void> DeleteCheckpoint(std::string_view, std::string_view) override {
    return Record("DeleteCheckpoint");
  }
  Result<ReindexResult> ReindexStep(const IndexDefinition&, const ReindexRequest&) override {
    calls_.insert("ReindexStep");
    ReindexResult r;
    r.resources = 9;
    return r;
  }
  Result<int> SchemaVersion() override {
    calls_.insert("SchemaVersion");
    return 10;
  }

 private:
  Result<void> Record(const char* name) {
    calls_.insert(name);
    return {};
  }
  std::set<std::string>& calls_;
};

TEST_CASE("forwarding session: every Session call reaches the inner session", "[store]") {
  std::set<std::string> calls;
  ForwardingSession s(std::make_unique<RecordingSession>(calls));
  auto read = s.Read("Patient", "p1");
  REQUIRE(read);
  REQUIRE(read->has_value());
  CHECK((*read)->id == "p1");
  CHECK(s.ReadVersion("Patient", "p1", 1));
  CHECK(s.History({})->size() == 2);
  CHECK(s.Search({})->size() == 3);
  CHECK(*s.Count({}) == 4);
  CHECK(s.Referenced({})->size() == 5);
  CHECK(*s.CountReferenced({}) == 6);
  CHECK(s.Begin());
  CHECK(s.LockAndRead("Patient", "p1"));
  ResourceKey key{"Patient", "p1"};
  CHECK(s.LockMany(std::span<const ResourceKey>(&key, 1)));
  CHECK(s.Write({}, {}));
  CHECK(s.Savepoint("a"));
  CHECK(s.ReleaseSavepoint("a"));
  CHECK(s.RollbackToSavepoint("a"));
  CHECK(s.ReadCheckpoints("src")->size() == 1);
  CHECK(s.WriteCheckpoint("src", "unit", "fp"));
  CHECK(**s.ReadCheckpoint("src", "unit") == "fp");
  CHECK(s.CheckpointSources("unit")->size() == 2);
  CHECK(*s.CountCheckpoints("src") == 7);
  CHECK(s.ReadCheckpointsAfter("src", "", 10)->size() == 8);
  CHECK(s.WriteUnitResources("src", "unit", "Patient/p1"));
  CHECK(*s.ReadUnitResources("src", "unit") == "Patient/p1");
  CHECK(s.DeleteCheckpoint("src", "unit"));
  CHECK(s.ReindexStep({}, {})->resources == 9);
  CHECK(*s.SchemaVersion() == 10);
  CHECK(s.Commit());
  s.Rollback();
  CHECK(calls.size() == 27);  // every virtual of store::Session
}

}  // namespace
}  // namespace kakehashi::gateway::store
