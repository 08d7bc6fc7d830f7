#include "kakehashi/adapters/hl7v2/adapter.hpp"

#include "kakehashi/adapters/hl7v2/parser.hpp"
#include "kakehashi/adapters/hl7v2/stream_splitter.hpp"
#include "kakehashi/common/errc.hpp"

#include <deque>
#include <fstream>

namespace kakehashi::adapters::hl7v2 {

std::optional<std::string> MessageRecord::GetText(std::string_view path) const {
  const Value v = message_.Get(path);
  if (!v.Present()) return std::nullopt;
  return v.Text();
}

namespace {

bool StartsWithSegment(std::string_view s, std::string_view name) {
  return s.size() >= 4 && s.substr(0, 3) == name &&
         !((s[3] >= 'A' && s[3] <= 'Z') || (s[3] >= 'a' && s[3] <= 'z') ||
           (s[3] >= '0' && s[3] <= '9') || s[3] == '\r' || s[3] == '\n');
}

// Streams a file: reads 1 MiB chunks, cuts them into messages with StreamSplitter and parses one
// piece at a time, so memory is bounded by the chunk plus the largest message, not the file.
class FileSource final : public RecordSource {
 public:
  static constexpr std::size_t kChunkBytes = 1 << 20;

  FileSource(std::ifstream in, ParseOptions options)
      : in_(std::move(in)), options_(std::move(options)) {}

  Result<std::unique_ptr<Record>> Next(IssueSink& issues) override {
    while (pending_.empty()) {
      if (auto piece = splitter_.Next()) {
        auto result = Parse(piece->bytes, piece->Options(options_), issues);
        for (auto& m : result.messages) pending_.push_back(std::move(m));
        continue;
      }
      if (splitter_.Finished()) return std::unique_ptr<Record>();
      chunk_.resize(kChunkBytes);
      in_.read(chunk_.data(), static_cast<std::streamsize>(chunk_.size()));
      if (in_.bad()) return common::make_error_code(common::errc::kIoError);
      chunk_.resize(static_cast<std::size_t>(in_.gcount()));
      if (chunk_.empty()) {
        // An empty file still gets its hl7v2.not_hl7 issue from Parse.
        if (!any_bytes_) (void)Parse({}, options_, issues);
        splitter_.Finish();
      } else {
        any_bytes_ = true;
        splitter_.Put(chunk_);
      }
    }
    auto record = std::make_unique<MessageRecord>(std::move(pending_.front()));
    pending_.pop_front();
    return std::unique_ptr<Record>(std::move(record));
  }

 private:
  std::ifstream in_;
  ParseOptions options_;
  StreamSplitter splitter_;
  std::string chunk_;
  bool any_bytes_ = false;
  std::deque<Message> pending_;
};

class Hl7v2Adapter final : public Adapter {
 public:
  std::string_view Name() const override { return "hl7v2"; }

  int Score(const Probe& probe) const override {
    if (probe.is_directory) return 0;
    std::string_view head = probe.head;
    if (head.substr(0, 3) == "\xEF\xBB\xBF") head.remove_prefix(3);
    while (!head.empty() &&
           (head.front() == '\x0B' || head.front() == ' ' || head.front() == '\r' ||
            head.front() == '\n' || head.front() == '\t')) {
      head.remove_prefix(1);
    }
    if (StartsWithSegment(head, "MSH")) return 90;
    if (StartsWithSegment(head, "FHS") || StartsWithSegment(head, "BHS")) return 80;
    if (head.find("\rMSH|") != std::string_view::npos ||
        head.find("\nMSH|") != std::string_view::npos) {
      return 40;
    }
    return 0;
  }

  Result<std::unique_ptr<RecordSource>> Open(const SourceSpec& source, const Options& options,
                                             IssueSink& /*issues*/) const override {
    std::ifstream in(source.path, std::ios::binary);
    if (!in) {
      std::error_code ec;
      return common::make_error_code(std::filesystem::exists(source.path, ec)
                                         ? common::errc::kIoError
                                         : common::errc::kNotFound);
    }
    ParseOptions parse_options;
    parse_options.source = source.name.empty() ? source.path.string() : source.name;
    parse_options.charset = options.charset;
    return std::unique_ptr<RecordSource>(
        std::make_unique<FileSource>(std::move(in), std::move(parse_options)));
  }
};

}  // namespace

std::unique_ptr<Adapter> MakeAdapter() {
  return std::make_unique<Hl7v2Adapter>();
}

}  // namespace kakehashi::adapters::hl7v2
