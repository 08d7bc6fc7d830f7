// HL7 v2 parser: split raw bytes into messages, pick the charset, decode, index.
//
// Why this order: ISO-2022-JP JIS pairs contain `| ^ ~ \ &` (本 = 0x4B5C, 万 = 0x4B7C, マ = 0x255E,
// 京 = 0x357E, 愛 = 0x3026), so fields can only be split after decoding (digest
// ssmix2-hl7v2.md §8 rule 1, §10.5). Message boundaries, however, can be found on raw bytes:
// CR/LF never occur inside a character in ISO-2022-JP, Shift_JIS or UTF-8, and ISO-2022-JP
// returns to ASCII at every line end, so a line starting with "MSH" is always ASCII.
#include "kakehashi/adapters/hl7v2/parser.hpp"

#include "hl7v2/escape.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>

namespace kakehashi::adapters::hl7v2 {

using common::Charset;
using common::DecodeProblem;
using common::DecodeProblemKind;

// Builds a Message from one raw message (friend of Message).
class MessageBuilder {
 public:
  MessageBuilder(const ParseOptions& options, IssueSink& issues)
      : options_(options), issues_(issues) {}

  // `raw` = one message (starts with "MSH"); `offset` its position in the Parse() input;
  // `first_line` the input line of its MSH. Returns false when no message can be built (the
  // caller keeps the bytes in `rejected`).
  bool Build(std::string_view raw, std::size_t offset, std::int64_t first_line, std::size_t index,
             bool has_frame_bytes, Message& msg);

 private:
  void ReportDecodeProblems(const Message& msg, const std::vector<DecodeProblem>& problems,
                            Charset charset);
  bool Index(Message& msg, std::int64_t first_line);
  void CheckEscapes(const Message& msg, std::size_t segment_index);
  Location Where(const Message* msg, std::string field, std::size_t raw_offset,
                 std::int64_t line) const;
  std::size_t MapOffset(std::size_t cleaned_offset) const;

  const ParseOptions& options_;
  IssueSink& issues_;
  std::string_view raw_;
  std::size_t offset_ = 0;            // of raw_ in the Parse() input
  std::vector<std::size_t> removed_;  // positions in raw_ of stripped 0x0B/0x1C bytes
  std::int64_t first_line_ = -1;
  std::size_t index_ = 0;  // message number in this Parse() call (0-based)
};

namespace {

constexpr bool IsLineEnd(char c) {
  return c == '\r' || c == '\n';
}
constexpr bool IsFrameByte(char c) {
  return c == '\x0B' || c == '\x1C';
}
constexpr bool IsAlnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool IsBatchSegment(std::string_view line) {
  if (line.size() < 3) return false;
  const std::string_view name = line.substr(0, 3);
  return (name == "FHS" || name == "BHS" || name == "BTS" || name == "FTS") &&
         (line.size() == 3 || !IsAlnum(line[3]));
}

bool IsMshLine(std::string_view line) {
  return line.size() >= 3 && line.substr(0, 3) == "MSH" && (line.size() == 3 || !IsAlnum(line[3]));
}

std::string_view ProblemCode(DecodeProblemKind kind) {
  switch (kind) {
    case DecodeProblemKind::kInvalidBytes: return "hl7v2.encoding.invalid_bytes";
    case DecodeProblemKind::kTruncated: return "hl7v2.encoding.truncated";
    case DecodeProblemKind::kUnknownEscape: return "hl7v2.encoding.unknown_escape";
    case DecodeProblemKind::kNonStandardKana: return "hl7v2.encoding.nonstandard_kana";
    case DecodeProblemKind::kUndeclaredEscape: return "hl7v2.encoding.undeclared_escape";
    case DecodeProblemKind::kBomStripped: return "hl7v2.encoding.bom_stripped";
  }
  return "hl7v2.encoding.invalid_bytes";
}

Severity ProblemSeverity(DecodeProblemKind kind) {
  if (common::IsError(kind)) return Severity::kError;
  if (kind == DecodeProblemKind::kBomStripped) return Severity::kInformation;
  return Severity::kWarning;
}

// Bytes that end a line for message splitting: CR, LF and the MLLP framing bytes 0x0B/0x1C.
constexpr std::array<bool, 256> kLineBreak = [] {
  std::array<bool, 256> t{};
  t['\r'] = t['\n'] = t[0x0B] = t[0x1C] = true;
  return t;
}();

// Iterates lines of `bytes`: a line ends at CR, LF, 0x0B or 0x1C; CRLF counts as one line end
// for numbering. Calls f(begin, end, line_number, terminator) for every non-empty line
// (terminator '\0' at the end of input).
template <class F>
void ForEachLine(std::string_view bytes, std::int64_t first_line, F&& f) {
  std::int64_t line = first_line;
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t begin = 0;
  while (begin <= n) {
    std::size_t i = begin;
    while (i < n && !kLineBreak[s[i]]) ++i;
    const char c = i < n ? static_cast<char>(s[i]) : '\0';
    if (i > begin) f(begin, i, line, c);
    if (i >= n) break;
    if (c == '\n' || (c == '\r' && (i + 1 >= n || s[i + 1] != '\n'))) ++line;
    begin = i + 1;
  }
}

struct SplitLine {
  std::size_t begin, end;
  std::int64_t line;
};

struct Split {
  struct Msg {
    ByteRange range;
    std::int64_t line;
    bool has_frame_bytes;  // 0x0B or 0x1C inside the range
  };
  std::vector<Msg> messages;
  std::vector<ByteRange> junk;  // text before the first MSH (or between batches)
  std::vector<std::int64_t> junk_lines;
  std::vector<SplitLine> batch;  // skipped batch segments
};

Split SplitRaw(std::string_view bytes, std::int64_t first_line = 1) {
  Split split;
  std::size_t msg_begin = std::string_view::npos;
  std::int64_t msg_line = -1;
  std::size_t junk_begin = std::string_view::npos, junk_end = 0;
  std::int64_t junk_line = -1;
  auto close_message = [&](std::size_t end) {
    if (msg_begin == std::string_view::npos) return;
    const std::string_view range = bytes.substr(msg_begin, end - msg_begin);
    const bool frame = std::memchr(range.data(), 0x0B, range.size()) != nullptr ||
                       std::memchr(range.data(), 0x1C, range.size()) != nullptr;
    split.messages.push_back({{msg_begin, end - msg_begin}, msg_line, frame});
    msg_begin = std::string_view::npos;
  };
  auto close_junk = [&] {
    if (junk_begin == std::string_view::npos) return;
    split.junk.push_back({junk_begin, junk_end - junk_begin});
    split.junk_lines.push_back(junk_line);
    junk_begin = std::string_view::npos;
  };
  ForEachLine(bytes, first_line,
              [&](std::size_t b, std::size_t e, std::int64_t line, char /*terminator*/) {
                const std::string_view text = bytes.substr(b, e - b);
                if (IsMshLine(text)) {
                  close_junk();
                  close_message(b);
                  msg_begin = b;
                  msg_line = line;
                } else if (IsBatchSegment(text)) {
                  close_junk();
                  close_message(b);
                  split.batch.push_back({b, e, line});
                } else if (msg_begin == std::string_view::npos) {
                  // Stray framing bytes or blank lines are not junk; anything else is.
                  if (junk_begin == std::string_view::npos) {
                    junk_begin = b;
                    junk_line = line;
                  }
                  junk_end = e;
                }
              });
  close_junk();
  close_message(bytes.size());
  return split;
}

// Reads MSH-18 and MSH-20 from the raw MSH line when no ESC, SO or 8-bit byte precedes them.
struct RawHeader {
  bool msh18_safe = false;
  std::string_view msh18, msh20;
};

RawHeader ReadRawHeader(std::string_view raw, char field_sep) {
  RawHeader h;
  int field = 2;  // raw[4..] is MSH-2
  std::size_t start = 4;
  for (std::size_t i = 4; i <= raw.size(); ++i) {
    const bool end = i == raw.size() || IsLineEnd(raw[i]) || IsFrameByte(raw[i]);
    const auto b = end ? 0u : static_cast<unsigned char>(raw[i]);
    if (!end && (b == 0x1B || b == 0x0E || b >= 0x80)) return h;  // not ASCII-safe from here
    if (end || raw[i] == field_sep) {
      const std::string_view value = raw.substr(start, i - start);
      if (field == 18) {
        h.msh18 = value;
        h.msh18_safe = true;
      } else if (field == 20) {
        h.msh20 = value;
        return h;
      }
      if (end) {
        h.msh18_safe = true;  // the MSH ends before MSH-18: nothing declared
        return h;
      }
      ++field;
      start = i + 1;
    }
  }
  return h;
}

bool CompatibleCharsets(Charset a, Charset b) {
  auto family = [](Charset c) { return c == Charset::kAscii ? Charset::kIso2022Jp : c; };
  return family(a) == family(b);
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

}  // namespace

std::optional<Charset> DeclaredCharset(std::string_view msh18, std::string_view msh20,
                                       char repetition_separator, bool* unknown) {
  if (unknown != nullptr) *unknown = false;
  bool ascii = false, jis = false, utf8 = false, sjis = false, latin1 = false;
  std::size_t start = 0;
  while (start <= msh18.size()) {
    std::size_t end = msh18.find(repetition_separator, start);
    if (end == std::string_view::npos) end = msh18.size();
    const std::string rep = Trim(msh18.substr(start, end - start));
    if (!rep.empty()) {
      const auto cs = common::CharsetFromName(rep);
      if (!cs) {
        if (unknown != nullptr) *unknown = true;
      } else {
        switch (*cs) {
          case Charset::kAscii: ascii = true; break;
          case Charset::kIso2022Jp: jis = true; break;
          case Charset::kUtf8: utf8 = true; break;
          case Charset::kCp932: sjis = true; break;
          case Charset::kLatin1: latin1 = true; break;
        }
      }
    }
    start = end + 1;
  }
  // MSH-20 (HL7 table 0356): "ISO 2022-1994" announces ISO 2022 switching.
  const std::string scheme = Trim(msh20);
  if (!scheme.empty() && common::CharsetFromName(scheme) == Charset::kIso2022Jp) {
    jis = true;
  }
  if (utf8) return Charset::kUtf8;
  if (sjis) return Charset::kCp932;
  if (jis) return Charset::kIso2022Jp;
  if (latin1) return Charset::kLatin1;
  if (ascii) return Charset::kAscii;
  return std::nullopt;
}

std::size_t MessageBuilder::MapOffset(std::size_t cleaned) const {
  std::size_t raw = cleaned;
  for (const std::size_t r : removed_) {
    if (r <= raw) {
      ++raw;
    } else {
      break;
    }
  }
  return raw;
}

Location MessageBuilder::Where(const Message* msg, std::string field, std::size_t raw_offset,
                               std::int64_t line) const {
  Location where;
  where.source = options_.source;
  // Location.record: MSH-10, or the message number when MSH-10 is unknown or empty.
  if (msg != nullptr && !msg->ControlId().empty()) {
    where.record = std::string(msg->ControlId());
  } else {
    where.record = "message " + std::to_string(options_.first_message_index + index_ + 1);
  }
  where.field = std::move(field);
  where.byte = static_cast<std::int64_t>(options_.base_offset + offset_ + raw_offset);
  where.line = line;
  return where;
}

bool MessageBuilder::Build(std::string_view raw, std::size_t offset, std::int64_t first_line,
                           std::size_t index, bool has_frame_bytes, Message& msg) {
  raw_ = raw;
  offset_ = offset;
  first_line_ = first_line;
  index_ = index;
  removed_.clear();

  // --- MSH-1 / MSH-2 (HL7 v2.5 §2.14.9.1-2) ---
  std::size_t msh_end = 0;
  while (msh_end < raw.size() && !IsLineEnd(raw[msh_end]) && !IsFrameByte(raw[msh_end])) {
    ++msh_end;
  }
  const std::string_view msh = raw.substr(0, msh_end);
  if (msh.size() < 4) {
    issues_.Fatal("hl7v2.msh.truncated", Where(nullptr, "MSH-1", 0, first_line),
                  "the MSH segment ends before MSH-1 (field separator); the message cannot be "
                  "split and is rejected");
    return false;
  }
  Delimiters d;
  d.field = msh[3];
  std::size_t enc_end = 4;
  while (enc_end < msh.size() && msh[enc_end] != d.field) ++enc_end;
  const std::string_view enc = msh.substr(4, enc_end - 4);
  if (enc.size() < 4 && enc_end == msh.size()) {
    issues_.Fatal("hl7v2.msh.truncated", Where(nullptr, "MSH-2", 4, first_line),
                  "the MSH segment ends inside MSH-2 (encoding characters, 4 expected); the "
                  "message cannot be split and is rejected");
    return false;
  }
  auto bad_char = [](char c) {
    return IsAlnum(c) || c == ' ' || IsLineEnd(c) || static_cast<unsigned char>(c) < 0x20 ||
           static_cast<unsigned char>(c) >= 0x7F;
  };
  bool bad = enc.size() < 4 || enc.size() > 5 || bad_char(d.field);
  if (!bad) {
    d.component = enc[0];
    d.repetition = enc[1];
    d.escape = enc[2];
    d.subcomponent = enc[3];
    const char all[5] = {d.field, d.component, d.repetition, d.escape, d.subcomponent};
    for (int a = 0; a < 5 && !bad; ++a) {
      if (bad_char(all[a])) bad = true;
      for (int b = a + 1; b < 5; ++b) {
        if (all[a] == all[b]) bad = true;
      }
    }
  }
  if (bad) {
    issues_.Fatal("hl7v2.msh.bad_delimiters", Where(nullptr, "MSH-2", 3, first_line),
                  "MSH-1/MSH-2 must be five distinct punctuation characters (usually |^~\\&); the "
                  "message cannot be split and is rejected");
    return false;
  }

  // --- Strip stray MLLP framing bytes (0x0B, 0x1C) ---
  std::string cleaned;
  std::string_view bytes = raw;
  if (has_frame_bytes) {
    cleaned.reserve(raw.size());
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (IsFrameByte(raw[i])) {
        removed_.push_back(i);
      } else {
        cleaned.push_back(raw[i]);
      }
    }
    bytes = cleaned;
  }

  // --- Charset ---
  // Cheap facts first (memchr is vectorised); the 8-bit scan and detection only when needed.
  const bool has_esc = std::memchr(bytes.data(), 0x1B, bytes.size()) != nullptr;
  auto has_high = [&bytes] {
    return std::any_of(bytes.begin(), bytes.end(),
                       [](char c) { return static_cast<unsigned char>(c) >= 0x80; });
  };
  Charset charset = Charset::kAscii;
  std::string_view mismatch_from;  // non-empty: report hl7v2.encoding.mismatch after indexing
  bool unknown_declared = false, undeclared = false, late_check = false;
  if (options_.charset) {
    charset = *options_.charset;
  } else {
    const RawHeader header = ReadRawHeader(bytes, d.field);
    std::optional<Charset> declared;
    if (header.msh18_safe) {
      declared = DeclaredCharset(header.msh18, header.msh20, d.repetition, &unknown_declared);
    } else {
      late_check = true;
    }
    if (!declared) {
      charset = common::SniffCharset(bytes);
      undeclared = header.msh18_safe && !has_esc && has_high();
    } else {
      charset = *declared;
      switch (*declared) {
        case Charset::kAscii:
        case Charset::kIso2022Jp:
          // 8-bit bytes without any escape: a UTF-8 or Shift_JIS file labelled ISO IR87.
          if (!has_esc && has_high()) {
            const Charset sniffed = common::SniffCharset(bytes);
            bool kana_only = true;
            for (const char c : bytes) {
              const auto b = static_cast<unsigned char>(c);
              if (b >= 0x80 && (b < 0xA1 || b > 0xDF)) kana_only = false;
            }
            if (sniffed == Charset::kUtf8 || !kana_only) {
              mismatch_from = common::ToString(*declared);
              charset = sniffed;
            }
          }
          break;
        case Charset::kUtf8:
        case Charset::kCp932:
          if (has_esc && !has_high()) {
            mismatch_from = common::ToString(*declared);
            charset = Charset::kIso2022Jp;
          }
          break;
        case Charset::kLatin1: break;
      }
    }
  }

  // --- Decode the whole message ---
  std::vector<DecodeProblem> problems;
  msg.text_.clear();
  msg.text_.reserve(bytes.size() + bytes.size() / 2);
  common::DecodeOptions decode_options;
  decode_options.mode = common::DecodeMode::kLenient;
  (void)common::DecodeAppend(bytes, charset, msg.text_, &problems, decode_options);
  msg.delimiters_ = d;
  msg.charset_ = charset;
  msg.source_offset_ = options_.base_offset + offset;
  msg.source_size_ = raw.size();
  msg.index_in_source_ = options_.first_message_index + index;
  msg.source_name_ = options_.source;
  msg.decode_errors_ = std::any_of(problems.begin(), problems.end(),
                                   [](const DecodeProblem& p) { return common::IsError(p.kind); });

  if (!Index(msg, first_line)) return false;

  // MSH-18 could not be read before decoding: check it now.
  if (late_check && !options_.charset) {
    const Value msh18 = msg.SegmentAt(0).Field(18);
    const Value msh20 = msg.SegmentAt(0).Field(20);
    const auto declared =
        DeclaredCharset(msh18.Raw(), msh20.Raw(), d.repetition, &unknown_declared);
    if (declared && !CompatibleCharsets(*declared, charset)) {
      mismatch_from = common::ToString(*declared);
    }
    undeclared = !declared && has_high();
  }
  if (unknown_declared) {
    issues_.Warning("hl7v2.encoding.unknown_charset", Where(&msg, "MSH-18", 0, first_line),
                    "MSH-18 names a character set kakehashi does not decode; the encoding was "
                    "detected from the bytes as " +
                        std::string(common::ToString(charset)));
  }
  if (!mismatch_from.empty()) {
    issues_.Warning("hl7v2.encoding.mismatch", Where(&msg, "MSH-18", 0, first_line),
                    "MSH-18 declares " + std::string(mismatch_from) + " but the bytes are " +
                        std::string(common::ToString(charset)) + "; decoded as " +
                        std::string(common::ToString(charset)) + " (fix the sender's MSH-18)");
  }
  if (undeclared) {
    issues_.Info("hl7v2.encoding.undeclared", Where(&msg, "MSH-18", 0, first_line),
                 "MSH-18 is empty but the message has non-ASCII bytes; detected " +
                     std::string(common::ToString(charset)));
  }
  ReportDecodeProblems(msg, problems, charset);

  // --- Required header fields (HL7 v2.5 §2.14.9: MSH-9, MSH-10, MSH-12 are required) ---
  const Segment header = msg.SegmentAt(0);
  if (header.FieldCount() < 12) {
    issues_.Error("hl7v2.msh.truncated",
                  Where(&msg, "MSH-" + std::to_string(header.FieldCount()), 0, first_line),
                  "the MSH segment has " + std::to_string(header.FieldCount()) +
                      " fields; MSH-9 (message type), MSH-10 (control ID) and MSH-12 (version) "
                      "are required");
  } else if (msg.ControlId().empty()) {
    issues_.Warning("hl7v2.msh.no_control_id", Where(&msg, "MSH-10", 0, first_line),
                    "MSH-10 (message control ID) is empty; issues and provenance cannot name "
                    "this message");
  }
  return true;
}

namespace {

// The field path ("PID-5", "OBX[2]-3") holding raw byte `offset` of one message, found on the
// raw bytes without decoding: field separators are counted only where they are real delimiters
// (ASCII state of ISO-2022-JP, not a CP932 trail byte). Empty when the line has no segment name.
std::string FieldAtRawOffset(std::string_view raw, std::size_t offset, Charset charset,
                             char field_sep) {
  // Start of the line holding `offset`, and the occurrence of its segment name.
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < offset && i < raw.size(); ++i) {
    if (raw[i] == '\r' || raw[i] == '\n' || raw[i] == '\x0B' || raw[i] == '\x1C') {
      line_start = i + 1;
    }
  }
  const std::string_view name = raw.substr(line_start, 3);
  if (name.size() < 3 || !std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      })) {
    return {};
  }
  int occurrence = 0;
  ForEachLine(raw.substr(0, line_start + 3), 1,
              [&](std::size_t b, std::size_t e, std::int64_t, char) {
                if (raw.substr(b, std::min<std::size_t>(3, e - b)) == name) ++occurrence;
              });
  // Count separators between the name and the offset.
  int separators = 0;
  bool ascii = true;  // ISO-2022-JP: in ASCII / JIS Roman
  int width = 1;      // ISO-2022-JP: bytes per character in the current set
  for (std::size_t i = line_start + 3; i < offset && i < raw.size(); ++i) {
    const auto b = static_cast<unsigned char>(raw[i]);
    if (charset == Charset::kIso2022Jp || charset == Charset::kAscii) {
      if (b == 0x1B && i + 2 < raw.size()) {
        const char c1 = raw[i + 1], c2 = raw[i + 2];
        ascii = c1 == '(' && (c2 == 'B' || c2 == 'J');
        width = c1 == '$' ? 2 : 1;
        i += 2;
        continue;
      }
      if (!ascii) {
        i += static_cast<std::size_t>(width - 1);
        continue;
      }
    } else if (charset == Charset::kCp932 &&
               ((b >= 0x81 && b <= 0x9F) || (b >= 0xE0 && b <= 0xFC))) {
      ++i;  // skip the trail byte (it may equal a delimiter)
      continue;
    }
    if (raw[i] == field_sep) ++separators;
  }
  std::string path(name);
  if (occurrence > 1) {
    path += '[';
    path += std::to_string(occurrence);
    path += ']';
  }
  path += '-';
  // MSH-1 is the separator itself, so MSH fields are one higher (HL7 v2.5 §2.14.9).
  path += std::to_string(name == "MSH" ? separators + 1 : separators);
  return path;
}

}  // namespace

void MessageBuilder::ReportDecodeProblems(const Message& msg,
                                          const std::vector<DecodeProblem>& problems,
                                          Charset charset) {
  for (const auto& p : problems) {
    const std::size_t raw_offset = MapOffset(p.offset);
    // Line of the problem: count line ends before it.
    std::int64_t line = first_line_;
    for (std::size_t i = 0; i < raw_offset && i < raw_.size(); ++i) {
      if (raw_[i] == '\n' || (raw_[i] == '\r' && (i + 1 >= raw_.size() || raw_[i + 1] != '\n'))) {
        ++line;
      }
    }
    std::string text = std::string(common::Describe(p.kind)) + " (" + std::to_string(p.length) +
                       " byte" + (p.length == 1 ? "" : "s") + ", decoding " +
                       std::string(common::ToString(charset)) + ")";
    issues_.Report({ProblemSeverity(p.kind), ProblemCode(p.kind),
                    Where(&msg, FieldAtRawOffset(raw_, raw_offset, charset, msg.delimiters_.field),
                          raw_offset, line),
                    std::move(text)});
  }
}

namespace {

struct SeparatorCounts {
  std::size_t fields = 0;     // field separators
  std::size_t line_ends = 0;  // CR and LF
};

// std::count(field) and std::count('\r') + std::count('\n') of `t` in one pass, eight bytes at
// a time (the three std::count passes ran byte by byte: ~1.5 % of a conversion's instructions).
// Zeros(v) has 0x80 in exactly the bytes of v that are zero (no carry crosses a byte), so every
// match is counted once; the per-byte counters are summed before any of them can pass 255.
SeparatorCounts CountSeparators(std::string_view t, char field) {
  SeparatorCounts counts;
  std::size_t i = 0;
  if constexpr (std::endian::native == std::endian::little) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kLow7 = 0x7F7F7F7F7F7F7F7FULL;
    constexpr std::uint64_t kEvenBytes = 0x00FF00FF00FF00FFULL;
    const auto zeros = [](std::uint64_t v) { return ~(((v & kLow7) + kLow7) | v | kLow7); };
    const auto sum_bytes = [](std::uint64_t a) {
      a = (a & kEvenBytes) + ((a >> 8) & kEvenBytes);  // four 16-bit sums, each <= 510
      return static_cast<std::size_t>((a * 0x0001000100010001ULL) >> 48);
    };
    const std::uint64_t f = kOnes * static_cast<unsigned char>(field);
    constexpr std::uint64_t cr = kOnes * '\r', lf = kOnes * '\n';
    while (i + 8 <= t.size()) {
      std::uint64_t fields = 0, line_ends = 0;  // one counter per byte lane
      for (int words = 0; words < 255 && i + 8 <= t.size(); ++words, i += 8) {
        std::uint64_t w;
        std::memcpy(&w, t.data() + i, 8);
        fields += zeros(w ^ f) >> 7;
        line_ends += (zeros(w ^ cr) | zeros(w ^ lf)) >> 7;  // CR and LF never share a byte
      }
      counts.fields += sum_bytes(fields);
      counts.line_ends += sum_bytes(line_ends);
    }
  }
  for (; i < t.size(); ++i) {
    counts.fields += t[i] == field ? 1 : 0;
    counts.line_ends += t[i] == '\r' || t[i] == '\n' ? 1 : 0;
  }
  return counts;
}

// The end of the field starting at t[k]: the position of the next field separator, CR or LF (n
// when none). Sets has_escape when the escape character occurs before it. Eight bytes at a time
// (the index pass was ~3.5 % of a whole conversion's instructions): a byte equal to v shows as
// the high bit of its lane in Zero(w ^ v*0x01..01); lanes above a true match may be set by the
// borrow, never lanes below one, so the lowest set lane is always exact.
std::uint32_t FieldEnd(const char* t, std::uint32_t k, std::uint32_t n, char field, char escape,
                       bool& has_escape) {
  if constexpr (std::endian::native == std::endian::little) {
    constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
    constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
    auto zero = [](std::uint64_t x) { return (x - kOnes) & ~x & kHigh; };
    const std::uint64_t f = kOnes * static_cast<unsigned char>(field);
    const std::uint64_t e = kOnes * static_cast<unsigned char>(escape);
    constexpr std::uint64_t cr = kOnes * '\r', lf = kOnes * '\n';
    while (k + 8 <= n) {
      std::uint64_t w;
      std::memcpy(&w, t + k, 8);
      const std::uint64_t stop = zero(w ^ f) | zero(w ^ cr) | zero(w ^ lf);
      const std::uint64_t esc = zero(w ^ e);
      if (stop == 0) {
        has_escape |= esc != 0;
        k += 8;
        continue;
      }
      const int at = std::countr_zero(stop);
      has_escape |= esc != 0 && std::countr_zero(esc) < at;
      return k + static_cast<std::uint32_t>(at / 8);
    }
  }
  while (k < n) {
    const char c = t[k];
    if (c == field || c == '\r' || c == '\n') break;
    has_escape |= c == escape;
    ++k;
  }
  return k;
}

}  // namespace

bool MessageBuilder::Index(Message& msg, std::int64_t first_line) {
  const std::string& t = msg.text_;
  const Delimiters& d = msg.delimiters_;
  msg.segments_.clear();
  msg.fields_.clear();
  // Exact-size index (one counting pass is cheaper than regrowing or over-reserving, and keeps
  // a parsed file's memory close to its text).
  const SeparatorCounts counts = CountSeparators(t, d.field);
  msg.fields_.reserve(counts.fields + 2);
  msg.segments_.reserve(counts.line_ends + 1);
  const auto n = static_cast<std::uint32_t>(t.size());
  std::uint32_t i = 0;
  std::int64_t line = first_line;
  while (i < n) {
    // Skip line ends (blank lines between segments).
    if (IsLineEnd(t[i])) {
      if (t[i] == '\n' || i + 1 >= n || t[i + 1] != '\n') ++line;
      ++i;
      continue;
    }
    Message::SegmentIndex seg;
    seg.line = line;
    seg.raw.begin = i;
    seg.name = i;
    seg.first_field = static_cast<std::uint32_t>(msg.fields_.size());
    const bool is_msh = msg.segments_.empty();
    bool has_escape = false;
    std::uint32_t j = i;
    if (is_msh) {
      // "MSH" + MSH-1 (the separator itself) + MSH-2 (encoding characters, never split).
      seg.name_size = 3;
      msg.fields_.push_back({i + 3, 1});
      j = i + 4;
      std::uint32_t k = j;
      while (k < n && t[k] != d.field && !IsLineEnd(t[k])) ++k;
      msg.fields_.push_back({j, k - j});
      j = k;
    } else {
      while (j < n && t[j] != d.field && !IsLineEnd(t[j])) ++j;
      seg.name_size = j - i;
    }
    // Fields: j is at a separator or the line end.
    while (j < n && t[j] == d.field) {
      const std::uint32_t start = j + 1;
      const std::uint32_t k = FieldEnd(t.data(), start, n, d.field, d.escape, has_escape);
      msg.fields_.push_back({start, k - start});
      j = k;
    }
    seg.field_count = static_cast<std::uint32_t>(msg.fields_.size()) - seg.first_field;
    seg.raw.size = j - i;
    msg.segments_.push_back(seg);
    const std::string_view name = std::string_view(t).substr(seg.name, seg.name_size);
    const bool good_name = name.size() == 3 && std::all_of(name.begin(), name.end(), [](char c) {
                             return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
                           });
    if (!good_name) {
      issues_.Warning("hl7v2.segment.bad_name",
                      Where(&msg, "segment " + std::to_string(msg.segments_.size()), 0, line),
                      "segment name is not 3 upper-case letters or digits; the segment is kept "
                      "but paths cannot address it unless its name fits");
    }
    if (has_escape) CheckEscapes(msg, msg.segments_.size() - 1);
    i = j;
  }
  msg.used_.clear();
  return !msg.segments_.empty();
}

void MessageBuilder::CheckEscapes(const Message& msg, std::size_t segment_index) {
  const Segment seg = msg.SegmentAt(segment_index);
  const char esc = msg.delimiters_.escape;
  const bool msh = segment_index == 0;
  for (int f = msh ? 3 : 1; f <= seg.FieldCount(); ++f) {
    const std::string_view raw = seg.Field(f).Raw();
    std::size_t pos = raw.find(esc);
    bool removed = false, unknown = false;
    while (pos != std::string_view::npos) {
      const std::size_t close = raw.find(esc, pos + 1);
      if (close == std::string_view::npos) {
        unknown = true;
        break;
      }
      const std::string_view content = raw.substr(pos + 1, close - pos - 1);
      if (content.empty()) {
        unknown = true;
        pos = raw.find(esc, pos + 1);
        continue;
      }
      const auto kind = detail::Classify(content);
      removed |= kind == detail::EscapeKind::kRemoved;
      unknown |= kind == detail::EscapeKind::kUnknown;
      pos = raw.find(esc, close + 1);
    }
    std::string path(seg.Name());
    if (seg.Occurrence() > 1) {
      path += '[';
      path += std::to_string(seg.Occurrence());
      path += ']';
    }
    path += '-';
    path += std::to_string(f);
    if (removed) {
      issues_.Warning("hl7v2.escape.removed", Where(&msg, path, 0, seg.Line()),
                      "formatting or character-set escape (\\H\\ \\N\\ \\C..\\ \\M..\\) removed "
                      "from the text; SS-MIX2 switches character sets with ISO 2022 instead");
    }
    if (unknown) {
      issues_.Warning("hl7v2.escape.unknown", Where(&msg, path, 0, seg.Line()),
                      "unknown or unterminated escape sequence kept verbatim");
    }
  }
}

std::vector<ByteRange> SplitMessages(std::string_view bytes) {
  std::vector<ByteRange> out;
  for (const auto& m : SplitRaw(bytes).messages) out.push_back(m.range);
  return out;
}

ParseResult Parse(std::string_view bytes, const ParseOptions& options, IssueSink& issues) {
  ParseResult result;
  const Split split = SplitRaw(bytes, options.first_line);
  auto where = [&](std::size_t offset, std::int64_t line) {
    Location w;
    w.source = options.source;
    w.byte = static_cast<std::int64_t>(options.base_offset + offset);
    w.line = line;
    return w;
  };
  if (split.messages.empty()) {
    issues.Fatal("hl7v2.not_hl7", where(0, options.first_line),
                 bytes.empty() ? "the input is empty; an HL7 v2 message starts with MSH"
                               : "no MSH segment found: the input is not HL7 v2 (or its first "
                                 "segment is damaged)");
    if (!bytes.empty()) result.rejected.push_back({0, bytes.size()});
    return result;
  }
  for (std::size_t k = 0; k < split.junk.size(); ++k) {
    issues.Error("hl7v2.msh.missing", where(split.junk[k].offset, split.junk_lines[k]),
                 "segments before the first MSH belong to no message; they are kept for "
                 "replay but not converted");
    result.rejected.push_back(split.junk[k]);
  }
  for (const auto& b : split.batch) {
    Location w = where(b.begin, b.line);
    w.field = std::string(bytes.substr(b.begin, 3));
    issues.Info("hl7v2.batch.skipped", std::move(w),
                "batch/file header or trailer segment skipped; the messages inside are read");
  }
  MessageBuilder builder(options, issues);
  result.messages.reserve(split.messages.size());
  std::size_t index = 0;
  for (const auto& m : split.messages) {
    if (issues.StopRequested()) break;
    Message msg;
    if (builder.Build(bytes.substr(m.range.offset, m.range.size), m.range.offset, m.line, index,
                      m.has_frame_bytes, msg)) {
      result.messages.push_back(std::move(msg));
    } else {
      result.rejected.push_back(m.range);
    }
    ++index;
  }
  std::sort(result.rejected.begin(), result.rejected.end(),
            [](const ByteRange& a, const ByteRange& b) { return a.offset < b.offset; });
  return result;
}

}  // namespace kakehashi::adapters::hl7v2
