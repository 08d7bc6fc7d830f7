// The "ssmix2" adapter (adapter.hpp): StorageReader records -> the hl7v2 adapter's messages.
#include "kakehashi/adapters/ssmix2/adapter.hpp"

#include "kakehashi/adapters/hl7v2/adapter.hpp"
#include "kakehashi/adapters/ssmix2/file_name.hpp"
#include "kakehashi/adapters/ssmix2/storage_reader.hpp"
#include "kakehashi/common/errc.hpp"

#include <deque>
#include <optional>

namespace kakehashi::adapters::ssmix2 {

namespace {

class Ssmix2Record final : public Record {
 public:
  Ssmix2Record(std::unique_ptr<Record> message, Action action, std::string data_type,
               std::string relative)
      : message_(std::move(message)),
        action_(action),
        data_type_(std::move(data_type)),
        relative_(std::move(relative)) {}
  std::string_view Kind() const override { return "ssmix2"; }
  std::optional<std::string> GetText(std::string_view path) const override {
    if (path == "SSMIX2.action") return action_ == Action::kDelete ? "delete" : "upsert";
    if (path == "SSMIX2.data_type") return data_type_;
    if (path == "SSMIX2.file") return relative_;
    return message_->GetText(path);
  }
  std::vector<std::string> UnusedFields() const override { return message_->UnusedFields(); }
  Location Where() const override {
    Location where = message_->Where();
    where.source = "ssmix2:" + relative_;
    return where;
  }

 private:
  std::unique_ptr<Record> message_;
  Action action_;
  std::string data_type_;
  std::string relative_;
};

// The StorageReader keeps its sink; this one forwards to the sink of the current Next() call.
class ForwardSink final : public IssueSink {
 public:
  void Report(Issue issue) override {
    if (to != nullptr) to->Report(std::move(issue));
  }
  IssueSink* to = nullptr;
};

class StoreSource final : public RecordSource {
 public:
  StoreSource(std::optional<StorageRecord> single, std::filesystem::path root, Options options)
      : options_(std::move(options)), hl7v2_(hl7v2::MakeAdapter()) {
    if (single) {
      pending_.push_back(std::move(*single));
    } else {
      reader_.emplace(std::move(root), forward_);
    }
  }

  Result<std::unique_ptr<Record>> Next(IssueSink& issues) override {
    forward_.to = &issues;
    while (true) {
      if (messages_) {
        KAKEHASHI_TRY(auto message, messages_->Next(issues));
        if (message) {
          return std::unique_ptr<Record>(
              std::make_unique<Ssmix2Record>(std::move(message), current_.action,
                                             current_.file.name.data_type, current_.file.relative));
        }
        messages_.reset();
      }
      if (pending_.empty() && reader_) {
        KAKEHASHI_TRY(auto next, reader_->Next());
        if (next) pending_.push_back(std::move(*next));
      }
      if (pending_.empty()) return std::unique_ptr<Record>();
      current_ = std::move(pending_.front());
      pending_.pop_front();
      SourceSpec spec{current_.file.path, "ssmix2:" + current_.file.relative};
      auto opened = hl7v2_->Open(spec, options_, issues);
      if (!opened) {
        Location where;
        where.source = spec.name;
        issues.Error("ssmix2.unreadable_file", where,
                     "the stored file cannot be read; check its permissions");
        continue;
      }
      messages_ = std::move(*opened);
    }
  }

 private:
  Options options_;
  ForwardSink forward_;
  std::unique_ptr<Adapter> hl7v2_;
  std::optional<StorageReader> reader_;
  std::deque<StorageRecord> pending_;
  StorageRecord current_;
  std::unique_ptr<RecordSource> messages_;
};

class Ssmix2Adapter final : public Adapter {
 public:
  std::string_view Name() const override { return "ssmix2"; }

  int Score(const Probe& probe) const override {
    if (probe.is_directory) return 60;
    return ParseFileName(probe.path.filename().string()).has_value() ? 95 : 0;
  }

  Result<std::unique_ptr<RecordSource>> Open(const SourceSpec& source, const Options& options,
                                             IssueSink& issues) const override {
    std::error_code ec;
    if (!std::filesystem::exists(source.path, ec)) {
      return common::make_error_code(common::errc::kNotFound);
    }
    if (std::filesystem::is_directory(source.path, ec)) {
      return std::unique_ptr<RecordSource>(
          std::make_unique<StoreSource>(std::nullopt, source.path, options));
    }
    KAKEHASHI_TRY(auto record, StorageReader::ResolveFile(source.path, issues));
    return std::unique_ptr<RecordSource>(
        std::make_unique<StoreSource>(std::move(record), std::filesystem::path(), options));
  }
};

}  // namespace

std::unique_ptr<Adapter> MakeAdapter() {
  return std::make_unique<Ssmix2Adapter>();
}

}  // namespace kakehashi::adapters::ssmix2
