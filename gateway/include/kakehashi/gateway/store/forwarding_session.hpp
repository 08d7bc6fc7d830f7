// A store::Session that passes every call to another session: the base of session decorators
// (BackgroundReindex's gate on searches, test doubles that hold or fail some calls), which
// override only the calls they change and reach the inner session through Inner().
//
// Every virtual of store::Session is forwarded, the optional ones included (Referenced,
// CountReferenced, LockMany, savepoints, checkpoints, ReindexStep, SchemaVersion), so that a
// decorator never answers errc::kUnsupported where its inner session would have answered.
// Thread-safety: as the inner session's (one thread at a time).
#pragma once

#include "kakehashi/gateway/store/store.hpp"

#include <memory>

namespace kakehashi::gateway::store {

class ForwardingSession : public Session {
 public:
  explicit ForwardingSession(std::unique_ptr<Session> inner);
  ~ForwardingSession() override;

  Result<std::optional<ResourceRow>> Read(std::string_view type, std::string_view id) override;
  Result<std::optional<ResourceRow>> ReadVersion(std::string_view type, std::string_view id,
                                                 std::int64_t version) override;
  Result<std::vector<HistoryRow>> History(const HistoryQuery& query) override;
  Result<std::vector<ResourceRow>> Search(const SearchQuery& query) override;
  Result<std::int64_t> Count(const SearchQuery& query) override;
  Result<std::vector<ResourceRow>> Referenced(const ReferencedQuery& query) override;
  Result<std::int64_t> CountReferenced(const ReferencedQuery& query) override;
  Result<void> Begin() override;
  Result<void> Commit() override;
  void Rollback() noexcept override;
  Result<std::optional<ResourceRow>> LockAndRead(std::string_view type,
                                                 std::string_view id) override;
  Result<void> LockMany(std::span<const ResourceKey> keys) override;
  Result<void> Write(const ResourceRow& row, const IndexEntries& index) override;
  Result<void> Savepoint(std::string_view name) override;
  Result<void> ReleaseSavepoint(std::string_view name) override;
  Result<void> RollbackToSavepoint(std::string_view name) override;
  Result<std::vector<std::pair<std::string, std::string>>> ReadCheckpoints(
      std::string_view source) override;
  Result<void> WriteCheckpoint(std::string_view source, std::string_view unit,
                               std::string_view fingerprint) override;
  Result<std::optional<std::string>> ReadCheckpoint(std::string_view source,
                                                    std::string_view unit) override;
  Result<std::vector<std::string>> CheckpointSources(std::string_view unit) override;
  Result<std::size_t> CountCheckpoints(std::string_view source) override;
  Result<std::vector<std::pair<std::string, std::string>>> ReadCheckpointsAfter(
      std::string_view source, std::string_view after, std::size_t limit) override;
  Result<void> WriteUnitResources(std::string_view source, std::string_view unit,
                                  std::string_view resources) override;
  Result<std::string> ReadUnitResources(std::string_view source, std::string_view unit) override;
  Result<void> DeleteCheckpoint(std::string_view source, std::string_view unit) override;
  Result<ReindexResult> ReindexStep(const IndexDefinition& def,
                                    const ReindexRequest& request) override;
  Result<int> SchemaVersion() override;

 protected:
  Session& Inner() { return *inner_; }

 private:
  std::unique_ptr<Session> inner_;
};

}  // namespace kakehashi::gateway::store
