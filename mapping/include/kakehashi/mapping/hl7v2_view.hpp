// MessageView over a parsed HL7 v2 message (adapters/hl7v2). The view reads positions with the
// message's structural navigation, which marks nothing in the message; the mapper keeps its own
// usage record. Not thread-safe (it remembers the last repetition read).
#pragma once

#include "kakehashi/adapters/hl7v2/message.hpp"
#include "kakehashi/mapping/message_view.hpp"

namespace kakehashi::mapping {

class Hl7v2View final : public MessageView {
 public:
  // `message` must outlive the view.
  explicit Hl7v2View(const adapters::hl7v2::Message& message) : message_(message) {}

  std::size_t SegmentCount() const override { return message_.SegmentCount(); }
  std::string_view SegmentId(std::size_t segment) const override {
    return message_.SegmentAt(segment).Name();
  }
  int FieldCount(std::size_t segment) const override {
    return message_.SegmentAt(segment).FieldCount();
  }
  int RepetitionCount(std::size_t segment, int field) const override;
  std::string Value(std::size_t segment, int field, int repetition, int component,
                    int subcomponent) const override;
  std::string_view Original() const override { return message_.Text(); }

 private:
  const adapters::hl7v2::Message& message_;
  // The repetition Value() found last: rules read several components of one field in a row (a
  // datatype template), each a walk from the field's start without it. One view per message,
  // read by one thread (the mapper), so a mutable cache is safe.
  struct LastRepetition {
    std::size_t segment = static_cast<std::size_t>(-1);
    int field = 0;
    int repetition = 0;
    bool found = false;    // the repetition exists (raw is its text)
    std::string_view raw;  // into the message
  };
  mutable LastRepetition last_;
};

}  // namespace kakehashi::mapping
