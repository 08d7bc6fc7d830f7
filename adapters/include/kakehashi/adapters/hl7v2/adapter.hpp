// The "hl7v2" adapter: files of HL7 v2.x messages (one or many per file, any charset of
// parser.hpp). The source streams the file in 1 MiB chunks through StreamSplitter, so memory is
// bounded by the largest message, not the file; records are MessageRecords in file order, with
// byte offsets and lines relative to the whole file.
//
// Score(): 90 when the file starts with "MSH" and a delimiter (after an optional UTF-8 BOM, 0x0B
// or white space), 80 for an FHS/BHS batch header, 40 when a segment starting "MSH|" appears in
// the first bytes, 0 otherwise (directories included).
#pragma once

#include "kakehashi/adapters/adapter.hpp"
#include "kakehashi/adapters/hl7v2/message.hpp"

#include <memory>

namespace kakehashi::adapters::hl7v2 {

// A parsed message as a generic Record (Kind() "hl7v2"); mapping code may downcast to reach the
// full Message API.
class MessageRecord final : public Record {
 public:
  explicit MessageRecord(Message message) : message_(std::move(message)) {}
  std::string_view Kind() const override { return "hl7v2"; }
  std::optional<std::string> GetText(std::string_view path) const override;
  std::vector<std::string> UnusedFields() const override { return message_.UnusedFields(); }
  Location Where() const override { return message_.LocationOf(); }
  const Message& GetMessage() const { return message_; }

 private:
  Message message_;
};

std::unique_ptr<Adapter> MakeAdapter();

}  // namespace kakehashi::adapters::hl7v2
