// HL7 v2.x parser: bytes -> decoded, indexed Messages + Issues (docs/hl7v2.md).
//
// Pipeline per input buffer (a file, an MLLP frame, an SS-MIX2 file):
//   1. Split the raw bytes into messages at every line that starts with "MSH" (lines end at CR,
//      LF, CRLF; stray 0x0B/0x1C (MLLP framing) also end a line and are removed). CR/LF never
//      occur inside a multibyte character of ISO-2022-JP, Shift_JIS or UTF-8, and ISO-2022-JP
//      returns to ASCII at each line end, so this is safe before decoding. FHS/BHS/BTS/FTS batch
//      segments are reported (information) and skipped; other text before the first MSH is
//      reported (hl7v2.msh.missing) and kept in ParseResult::rejected.
//   2. Choose the charset per message: ParseOptions::charset if set; else MSH-18 (all
//      repetitions) and MSH-20 read from the raw bytes when no ESC, SO or 8-bit byte precedes
//      them; else detection (common::SniffCharset) and MSH-18 read from the decoded text; a
//      declaration contradicted by the bytes (UTF-8 bytes declared ISO IR87, ...) is reported
//      and the bytes win (hl7v2.encoding.mismatch).
//   3. Decode the whole message to UTF-8 (common/charset.hpp) — JIS bytes contain `|^~\&`, so
//      splitting comes after decoding (digest ssmix2-hl7v2.md §8).
//   4. Split on the delimiters of MSH-1/MSH-2 and index segments and fields; escape sequences
//      are checked now and resolved lazily (Value::Text()).
//
// Issue codes (stable; Location.source = ParseOptions::source, record = MSH-10 when known and
// non-empty, else "message N" (1-based number in the input),
// field = segment/field path, byte = offset in the input, line = input line):
//   hl7v2.not_hl7                     fatal    no MSH segment anywhere in the input
//   hl7v2.msh.missing                 error    segments before the first MSH (kept in rejected)
//   hl7v2.msh.truncated               fatal    MSH ends before MSH-2 is complete: message dropped
//                                              (its bytes are in rejected)
//                                     error    MSH lacks MSH-9, MSH-10 or MSH-12: message kept
//   hl7v2.msh.bad_delimiters          fatal    MSH-1/MSH-2 repeat a character or use a letter,
//                                              digit, space or line end: message dropped
//   hl7v2.msh.no_control_id           warning  MSH-10 is empty
//   hl7v2.encoding.invalid_bytes      error    bytes invalid for the charset (U+FFFD in the text)
//   hl7v2.encoding.truncated          error    message ends inside a character / escape sequence
//   hl7v2.encoding.unknown_escape     error    ISO 2022 escape for a set that is not decoded
//   hl7v2.encoding.nonstandard_kana   warning  SO/SI or 8-bit kana inside ISO-2022-JP
//   hl7v2.encoding.undeclared_escape  warning  ISO 2022 escapes in a message declared ASCII
//   hl7v2.encoding.unknown_charset    warning  MSH-18 names a charset not supported; detected
//   hl7v2.encoding.mismatch           warning  the bytes contradict MSH-18; decoded as detected
//   hl7v2.encoding.undeclared         information  no MSH-18 and non-ASCII bytes; detected
//   hl7v2.encoding.bom_stripped       information  UTF-8 byte-order mark removed
//   hl7v2.escape.removed              warning  \H\ \N\ \C..\ \M..\ removed from a field
//   hl7v2.escape.unknown              warning  unknown or unterminated escape kept verbatim
//   hl7v2.segment.bad_name            warning  segment name is not 3 letters/digits (kept)
//   hl7v2.batch.skipped               information  FHS/BHS/BTS/FTS segment skipped
// Messages never contain field values.
//
// Thread-safety: Parse() is reentrant; give each thread its own IssueSink.
#pragma once

#include "kakehashi/adapters/hl7v2/message.hpp"
#include "kakehashi/common/charset.hpp"
#include "kakehashi/common/issue_sink.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::adapters::hl7v2 {

struct ParseOptions {
  std::string source;  // Location.source of every issue ("file.hl7", "ssmix2:001/…", "mllp:peer")
  // Decode with this charset and ignore MSH-18 (an operator who knows better).
  std::optional<common::Charset> charset;
  // Index of the first message for Location/IndexInSource (when a caller feeds chunks).
  std::size_t first_message_index = 0;
  // Added to every byte offset reported (when `bytes` is a slice of a larger source).
  std::size_t base_offset = 0;
  // Input line number of bytes[0] (when `bytes` is a slice of a larger source).
  std::int64_t first_line = 1;
};

struct ByteRange {
  std::size_t offset = 0;  // in the input passed to Parse (base_offset not added)
  std::size_t size = 0;
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

struct ParseResult {
  std::vector<Message> messages;  // in input order
  // Input that produced no message (text before the first MSH, messages whose MSH is unusable),
  // in input order: keep it for replay (RejectStore).
  std::vector<ByteRange> rejected;
};

// Parses every message in `bytes`. Never throws on bad input and never drops input silently:
// every problem is an Issue in `issues`.
ParseResult Parse(std::string_view bytes, const ParseOptions& options, IssueSink& issues);

// The raw byte ranges of the messages in `bytes` (step 1 above), each from its "MSH" up to the
// next "MSH" line, batch segment or the end (trailing blank lines and framing bytes included).
// Text before the first MSH is not included.
std::vector<ByteRange> SplitMessages(std::string_view bytes);

// The charset declared by MSH-18 (every repetition) and MSH-20 (kakehashi rule): a repetition
// naming UTF-8 wins, then Shift_JIS/CP932, then any JIS repertoire or an ISO 2022 scheme in
// MSH-20 (-> ISO-2022-JP), then Latin-1, then ASCII. nullopt when every repetition is empty and
// MSH-20 announces nothing. `*unknown` (if given) is set when a non-empty repetition names no
// supported charset (common::CharsetFromName).
std::optional<common::Charset> DeclaredCharset(std::string_view msh18, std::string_view msh20,
                                               char repetition_separator, bool* unknown = nullptr);

}  // namespace kakehashi::adapters::hl7v2
