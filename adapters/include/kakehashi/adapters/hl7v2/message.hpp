// One parsed HL7 v2.x message: the decoded UTF-8 text plus an index of segments and fields.
//
// Built by hl7v2::Parse() (parser.hpp). The message owns its decoded text; every Value and
// Segment is a view into it (zero-copy, valid while the Message lives and is not moved-from;
// moving a Message keeps views valid only if you re-fetch them, so fetch after moving). Escape
// sequences are resolved lazily by Value::Text().
//
// Reading by path (grammar in path.hpp):
//
//   const Value name = msg.Get("PID-5[1].1");      // marks PID-5.1 as used
//   std::string family = name.Text();             // unescaped UTF-8
//   for (const Value& id : msg.GetAll("PID-3[*]")) ...
//   for (const SegmentRange& g : msg.Segments().Groups("ORC")) g.Get("RXE-2.1") ...
//
// Every Get/GetAll marks what it addressed as used (per field and component); UnusedFields()
// lists the non-empty fields/components nothing read, so the mapping layer can report them as
// `information` issues. Navigating from a Value (Component(), Repetition()) marks nothing more.
//
// Segments are kept in input order, including Z-segments and segments this library does not
// know; none is ever dropped.
//
// Thread-safety: a const Message may be read from one thread at a time (Get updates the usage
// marks); distinct messages are independent.
#pragma once

#include "kakehashi/adapters/hl7v2/path.hpp"
#include "kakehashi/common/charset.hpp"
#include "kakehashi/common/issue.hpp"

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::adapters::hl7v2 {

// MSH-1 and MSH-2 (HL7 v2.5 §2.5.4); the defaults are the recommended `|^~\&`.
struct Delimiters {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';
  char subcomponent = '&';
  friend bool operator==(const Delimiters&, const Delimiters&) = default;
};

// Resolves HL7 escape sequences (HL7 v2.5 §2.7) and appends the result to `out`:
//   \F\ \S\ \T\ \R\ \E\   -> the declared field, component, subcomponent, repetition, escape char
//   \Xhh...\              -> the bytes hh... when they form valid UTF-8, else kept verbatim
//   \.br\ \.sp\           -> "\n"
//   \H\ \N\               -> removed (highlight on/off)
//   \Cxxyy\ \Mxxyyzz\     -> removed (charset switches; SS-MIX2 uses ISO 2022 escapes instead)
//   anything else, or an escape char without a closing one -> kept verbatim
// The parser reports removed or unknown sequences as issues (hl7v2.escape.*); this function
// never fails.
void UnescapeAppend(std::string_view raw, const Delimiters& delimiters, std::string& out);
std::string Unescape(std::string_view raw, const Delimiters& delimiters);

// A field, repetition, component or subcomponent of a message (a view; cheap to copy).
class Value {
 public:
  enum class Level : std::uint8_t { kField, kRepetition, kComponent, kSubcomponent };

  Value() = default;
  Value(std::string_view raw, const Delimiters* delimiters, Level level)
      : raw_(raw), delimiters_(delimiters), level_(level), present_(true) {}

  // The addressed element exists in the message (it may still be empty). A path past the last
  // field/repetition/component gives a non-present, empty Value.
  bool Present() const { return present_; }
  bool Empty() const { return raw_.empty(); }
  // HL7 explicit null `""` (JAHIS: present-and-empty, e.g. RXE-3 for ointments). Text() is "".
  bool IsNull() const { return raw_ == "\"\""; }
  // The escaped text exactly as in the message (a view into the Message).
  std::string_view Raw() const { return raw_; }
  // Unescaped UTF-8 text; "" for an explicit null.
  std::string Text() const;
  // Zero-copy variant: returns Raw() when there is nothing to unescape, else unescapes into
  // `scratch` and returns a view of it.
  std::string_view TextView(std::string& scratch) const;

  // Structural navigation (1-based; marks nothing). On a whole field, Component() and
  // Subcomponent() address the first repetition, like HL7 paths do. Component(0) and
  // Subcomponent(0) return the value itself ("the whole", as in Path).
  Value Repetition(int n) const;
  Value Component(int n) const;
  Value Subcomponent(int n) const;
  int RepetitionCount() const;  // 0 for an empty field
  int ComponentCount() const;   // of the first repetition
  Level GetLevel() const { return level_; }

 private:
  std::string_view raw_;
  const Delimiters* delimiters_ = nullptr;
  Level level_ = Level::kField;
  bool present_ = false;
};

class Message;

// One segment (a view into a Message).
class Segment {
 public:
  Segment(const Message& message, std::size_t index) : message_(&message), index_(index) {}

  std::string_view Name() const;  // "PID", "ZPR", ...
  std::string_view Raw() const;   // the whole segment text (escaped), without terminator
  std::size_t Index() const { return index_; }  // 0-based position in the message
  int Occurrence() const;                       // 1-based among segments of the same name
  int FieldCount() const;  // number of the last field present (MSH counts MSH-1)
  // Whole field n (1-based; MSH-1 is the separator, MSH-2 the encoding characters). Does not
  // mark usage: prefer Message/SegmentRange::Get in mapping code.
  Value Field(int n) const;
  // Segment line number in the source (1-based, counting segments from the message start is
  // not enough for editors: this counts input lines), for Location.line.
  std::int64_t Line() const;

 private:
  const Message* message_;
  std::size_t index_;
};

// A contiguous run of segments of one message: the whole message or a group. Paths given to a
// range count segment occurrences inside the range ("OBX[2]" = second OBX of this group).
class SegmentRange {
 public:
  SegmentRange(const Message& message, std::size_t first, std::size_t last)
      : message_(&message), first_(first), last_(last) {}

  std::size_t size() const { return last_ - first_; }
  bool empty() const { return first_ == last_; }
  Segment operator[](std::size_t i) const { return Segment(*message_, first_ + i); }
  std::size_t FirstIndex() const { return first_; }  // message-level index of the first segment

  // The element at `path`, marking it used; a non-present Value when it does not exist.
  // A path with a wildcard returns the first match.
  Value Get(std::string_view path) const;
  Value Get(const Path& path) const;
  // Shorthand for Get(path).Text().
  std::string GetText(std::string_view path) const;
  // Every element matching `path` (wildcards "*" for segment occurrence and/or repetition), in
  // message order, each marked used. Empty repetitions are included (their Raw() is empty).
  std::vector<Value> GetAll(std::string_view path) const;
  std::vector<Value> GetAll(const Path& path) const;

  // Segment `name` number `occurrence` (1-based) in this range.
  std::optional<Segment> Find(std::string_view name, int occurrence = 1) const;
  int Count(std::string_view name) const;

  // Splits this range into groups, each starting at a `starter` segment and running up to (not
  // including) the next `starter`, the next segment named in `terminators`, or the range end.
  // Segments before the first starter belong to no group.
  //   msg.Segments().Groups("ORC")                 // RDE^O11: ORC RXE TQ1* RXR* RXC*
  //   msg.Segments().Groups("OBR", {"SPM"})        // OUL^R22: OBR [ORC] NTE* TQ1* OBX*
  std::vector<SegmentRange> Groups(std::string_view starter,
                                   std::initializer_list<std::string_view> terminators = {}) const;

  const Message& GetMessage() const { return *message_; }

 private:
  const Message* message_;
  std::size_t first_;
  std::size_t last_;
};

class Message {
 public:
  Message() = default;

  // --- Whole-message reads (delegate to Segments()) ---
  SegmentRange Segments() const { return SegmentRange(*this, 0, segments_.size()); }
  Value Get(std::string_view path) const { return Segments().Get(path); }
  Value Get(const Path& path) const { return Segments().Get(path); }
  std::string GetText(std::string_view path) const { return Segments().GetText(path); }
  std::vector<Value> GetAll(std::string_view path) const { return Segments().GetAll(path); }
  std::vector<Value> GetAll(const Path& path) const { return Segments().GetAll(path); }
  std::size_t SegmentCount() const { return segments_.size(); }
  Segment SegmentAt(std::size_t i) const { return Segment(*this, i); }

  // --- Header shortcuts (raw MSH values; these do not mark usage) ---
  std::string_view ControlId() const;     // MSH-10
  std::string_view MessageCode() const;   // MSH-9.1 ("ADT")
  std::string_view TriggerEvent() const;  // MSH-9.2 ("A08")
  std::string_view Structure() const;     // MSH-9.3 ("ADT_A01"), may be empty
  std::string_view Version() const;       // MSH-12 ("2.5")

  // --- Provenance ---
  // Decoded UTF-8 as received: segment terminators (CR, LF, CRLF) kept, 0x0B/0x1C removed.
  std::string_view Text() const { return text_; }
  const Delimiters& GetDelimiters() const { return delimiters_; }
  common::Charset SourceCharset() const { return charset_; }      // charset used to decode
  std::size_t SourceOffset() const { return source_offset_; }     // first byte in the input
  std::size_t SourceSize() const { return source_size_; }         // raw bytes of this message
  std::size_t IndexInSource() const { return index_in_source_; }  // 0-based message number
  const std::string& SourceName() const { return source_name_; }
  // True when some bytes could not be decoded (they became U+FFFD; an error issue was reported).
  bool HasDecodeErrors() const { return decode_errors_; }
  // A Location for issues about this message: source, record = MSH-10, field = `field`.
  Location LocationOf(std::string_view field = {}) const;

  // --- Usage ---
  // Paths ("PID-11.8", "OBX[2]-5", "ZPR-7") of non-empty fields and components that no
  // Get/GetAll addressed, in message order. MSH-1 and MSH-2 are never listed.
  std::vector<std::string> UnusedFields() const;
  void ResetUsage() const;

 private:
  friend class Segment;
  friend class SegmentRange;
  friend class MessageBuilder;  // parser internals

  struct Span {
    std::uint32_t begin = 0;
    std::uint32_t size = 0;
  };
  struct SegmentIndex {
    std::uint32_t name = 0;  // offset of the 3-letter name in text_ (name may be longer)
    std::uint32_t name_size = 0;
    std::uint32_t first_field = 0;  // index into fields_ of field 1
    std::uint32_t field_count = 0;  // fields stored (field 1..field_count)
    Span raw;                       // whole segment
    std::int64_t line = -1;
  };

  std::string_view SpanView(Span s) const {
    return std::string_view(text_).substr(s.begin, s.size);
  }
  void MarkUsed(std::size_t field_slot, int component) const;

  std::string text_;
  Delimiters delimiters_;
  std::vector<SegmentIndex> segments_;
  std::vector<Span> fields_;
  // Per field slot: bit 0 = whole field read; bit c (1..62) = component c read; bit 63 = any
  // component >= 63.
  mutable std::vector<std::uint64_t> used_;
  common::Charset charset_ = common::Charset::kAscii;
  std::size_t source_offset_ = 0;
  std::size_t source_size_ = 0;
  std::size_t index_in_source_ = 0;
  std::string source_name_;
  bool decode_errors_ = false;
};

}  // namespace kakehashi::adapters::hl7v2
