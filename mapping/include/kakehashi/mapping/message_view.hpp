// What mapping rules can read from a source message: segments in order and decoded values by
// position. The HL7 v2 adapter's parsed message is wrapped in a MessageView (see
// hl7v2_view.hpp); tests may implement it directly. Rules never see bytes, only this view, and
// every read is recorded so unused input can be reported (STYLE.md "Unused input").
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kakehashi::mapping {

class MessageView {
 public:
  virtual ~MessageView() = default;

  virtual std::size_t SegmentCount() const = 0;
  // "PID", "OBX", "ZPR".
  virtual std::string_view SegmentId(std::size_t segment) const = 0;
  // Number of fields present in the segment (the highest field number with a value or separator).
  virtual int FieldCount(std::size_t segment) const = 0;
  // Number of repetitions of a field (0 when the field is empty).
  virtual int RepetitionCount(std::size_t segment, int field) const = 0;
  // The decoded, unescaped text at the position (HL7 numbering: field >= 1, repetition,
  // component and subcomponent >= 1). Empty when absent. The explicit null `""` reads as empty.
  // component == 0 returns the whole repetition (all components, delimiters included).
  virtual std::string Value(std::size_t segment, int field, int repetition, int component,
                            int subcomponent) const = 0;
  // The whole message as received (for DocumentReference attachments), UTF-8.
  virtual std::string_view Original() const = 0;
};

}  // namespace kakehashi::mapping
