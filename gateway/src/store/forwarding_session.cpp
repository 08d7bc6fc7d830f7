// ForwardingSession (forwarding_session.hpp): every call to the inner session.
#include "kakehashi/gateway/store/forwarding_session.hpp"

#include <utility>

namespace kakehashi::gateway::store {

ForwardingSession::ForwardingSession(std::unique_ptr<Session> inner) : inner_(std::move(inner)) {}

ForwardingSession::~ForwardingSession() = default;

Result<std::optional<ResourceRow>> ForwardingSession::Read(std::string_view type,
                                                           std::string_view id) {
  return inner_->Read(type, id);
}

Result<std::optional<ResourceRow>> ForwardingSession::ReadVersion(std::string_view type,
                                                                  std::string_view id,
                                                                  std::int64_t version) {
  return inner_->ReadVersion(type, id, version);
}

Result<std::vector<HistoryRow>> ForwardingSession::History(const HistoryQuery& query) {
  return inner_->History(query);
}

Result<std::vector<ResourceRow>> ForwardingSession::Search(const SearchQuery& query) {
  return inner_->Search(query);
}

Result<std::int64_t> ForwardingSession::Count(const SearchQuery& query) {
  return inner_->Count(query);
}

Result<std::vector<ResourceRow>> ForwardingSession::Referenced(const ReferencedQuery& query) {
  return inner_->Referenced(query);
}

Result<std::int64_t> ForwardingSession::CountReferenced(const ReferencedQuery& query) {
  return inner_->CountReferenced(query);
}

Result<void> ForwardingSession::Begin() {
  return inner_->Begin();
}

Result<void> ForwardingSession::Commit() {
  return inner_->Commit();
}

void ForwardingSession::Rollback() noexcept {
  inner_->Rollback();
}

Result<std::optional<ResourceRow>> ForwardingSession::LockAndRead(std::string_view type,
                                                                  std::string_view id) {
  return inner_->LockAndRead(type, id);
}

Result<void> ForwardingSession::LockMany(std::span<const ResourceKey> keys) {
  return inner_->LockMany(keys);
}

Result<void> ForwardingSession::Write(const ResourceRow& row, const IndexEntries& index) {
  return inner_->Write(row, index);
}

Result<void> ForwardingSession::Savepoint(std::string_view name) {
  return inner_->Savepoint(name);
}

Result<void> ForwardingSession::ReleaseSavepoint(std::string_view name) {
  return inner_->ReleaseSavepoint(name);
}

Result<void> ForwardingSession::RollbackToSavepoint(std::string_view name) {
  return inner_->RollbackToSavepoint(name);
}

Result<std::vector<std::pair<std::string, std::string>>> ForwardingSession::ReadCheckpoints(
    std::string_view source) {
  return inner_->ReadCheckpoints(source);
}

Result<void> ForwardingSession::WriteCheckpoint(std::string_view source, std::string_view unit,
                                                std::string_view fingerprint) {
  return inner_->WriteCheckpoint(source, unit, fingerprint);
}

Result<std::optional<std::string>> ForwardingSession::ReadCheckpoint(std::string_view source,
                                                                     std::string_view unit) {
  return inner_->ReadCheckpoint(source, unit);
}

Result<std::vector<std::string>> ForwardingSession::CheckpointSources(std::string_view unit) {
  return inner_->CheckpointSources(unit);
}

Result<std::size_t> ForwardingSession::CountCheckpoints(std::string_view source) {
  return inner_->CountCheckpoints(source);
}

Result<std::vector<std::pair<std::string, std::string>>> ForwardingSession::ReadCheckpointsAfter(
    std::string_view source, std::string_view after, std::size_t limit) {
  return inner_->ReadCheckpointsAfter(source, after, limit);
}

Result<void> ForwardingSession::WriteUnitResources(std::string_view source, std::string_view unit,
                                                   std::string_view resources) {
  return inner_->WriteUnitResources(source, unit, resources);
}

Result<std::string> ForwardingSession::ReadUnitResources(std::string_view source,
                                                         std::string_view unit) {
  return inner_->ReadUnitResources(source, unit);
}

Result<void> ForwardingSession::DeleteCheckpoint(std::string_view source, std::string_view unit) {
  return inner_->DeleteCheckpoint(source, unit);
}

Result<ReindexResult> ForwardingSession::ReindexStep(const IndexDefinition& def,
                                                     const ReindexRequest& request) {
  return inner_->ReindexStep(def, request);
}

Result<int> ForwardingSession::SchemaVersion() {
  return inner_->SchemaVersion();
}

}  // namespace kakehashi::gateway::store
