// Character-set decoding of whole byte buffers to UTF-8 (digest ssmix2-hl7v2.md §8).
//
// Rule 1 of every kakehashi reader: decode the whole input to Unicode first, split on delimiters
// afterwards. ISO-2022-JP JIS pairs (bytes 0x21-0x7E) contain `|` `^` `~` `\` `&`, so tokenising
// raw bytes breaks fields.
//
// Supported charsets:
//   kIso2022Jp  ISO-2022-JP as Japanese producers write it (ISO-2022-JP-MS / CP5022x-like):
//                 ESC ( B  ASCII             ESC ( J  JIS X 0201 Roman, read as ASCII
//                 ESC $ B  JIS X 0208-1983   ESC $ @  JIS X 0208-1978 (both mapped via CP932,
//                          incl. NEC row 13 (①, Ⅱ, ㍉, ㈱) and rows 89-92 (NEC-selected IBM))
//                 ESC $ ( B / ESC $ ( @  long forms of ESC $ B / ESC $ @
//                 ESC ( I  JIS X 0201 katakana: 0x21-0x5F -> U+FF61-U+FF9F
//                 ESC & @  (JIS X 0208-1990 announcer) ignored
//               SO/SI (0x0E/0x0F) shifts and raw 0xA1-0xDF bytes are read as half-width kana and
//               reported as kNonStandardKana (a CP5022x habit); bytes 0x60-0x7E in a kana run are
//               kInvalidBytes but stay ASCII in lenient mode (a forgotten ESC ( B before `|` must
//               not swallow the delimiter). CR and LF reset the state to ASCII.
//               Any other escape sequence (ESC $ ( D, ...) is kUnknownEscape.
//   kCp932      Shift_JIS as Windows-31J (CP932: NEC and IBM extensions, user-defined area -> PUA).
//   kUtf8       validated; a leading BOM is stripped (kBomStripped).
//   kAscii      7-bit; decoded by the ISO-2022-JP decoder (ASCII is its initial state), so an
//               undeclared ESC $ B run still decodes; bytes >= 0x80 are invalid.
//   kLatin1     ISO 8859-1 (HL7 `8859/1`).
// The JIS X 0208 / CP932 tables are ICU's `windows-31j` converter, read once into flat arrays the
// first time a Japanese charset is decoded (thread-safe); the hot loop itself does not call ICU.
//
// Problems carry a byte offset into the input, never the bytes themselves (no patient data).
// Thread-safety: every function here is reentrant.
#pragma once

#include "kakehashi/common/result.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kakehashi::common {

enum class Charset : std::uint8_t {
  kAscii,
  kIso2022Jp,
  kCp932,
  kUtf8,
  kLatin1,
};

// Canonical name: "US-ASCII", "ISO-2022-JP", "Windows-31J", "UTF-8", "ISO-8859-1".
std::string_view ToString(Charset charset) noexcept;

// The charset named by `name`, compared case-insensitively with spaces, '-', '_' and '/' removed:
//   HL7 table 0211 / MSH-18: "ASCII", "ISO IR6" (ASCII), "ISO IR14" (JIS X 0201 Roman),
//     "ISO IR13" (JIS X 0201 kana), "ISO IR87" (JIS X 0208), "ISO IR159" (JIS X 0212),
//     "UNICODE UTF-8", "8859/1", "ISO IR100"; loose spellings "ISOIR87", "ISO IR 87";
//   MSH-20: "ISO 2022-1994" (and "ISO2022-1994", " ISO 2022-1994");
//   DICOM-style: "ISO 2022 IR 87", "ISO 2022 IR 13", "ISO_IR 13", "ISO 2022 IR 6", "ISO_IR 192";
//   IANA / vendor names: "ISO-2022-JP", "ISO-2022-JP-MS", "CP50220", "CP50221", "JIS",
//     "Shift_JIS", "SJIS", "CP932", "MS932", "Windows-31J", "UTF-8", "US-ASCII", "ISO-8859-1".
// Every JIS name maps to kIso2022Jp (the 7-bit code that switches between them). nullopt for
// anything else (UTF-16, GB 18030, BIG-5, EUC-JP, ...). An empty name is nullopt.
std::optional<Charset> CharsetFromName(std::string_view name) noexcept;

// Detection when nothing is declared (kakehashi rule, digest §8): ESC present or every byte
// < 0x80 -> kIso2022Jp; otherwise valid UTF-8 (also when cut inside its last character) -> kUtf8;
// otherwise kCp932.
Charset SniffCharset(std::string_view bytes) noexcept;

// True when `bytes` is well-formed UTF-8 (no overlongs, surrogates or code points > U+10FFFF).
// On false, *error_offset (if given) is the offset of the first bad byte.
bool IsValidUtf8(std::string_view bytes, std::size_t* error_offset = nullptr) noexcept;

// Appends code point `cp` (< 0x110000) to `out` in UTF-8 (RFC 3629 §3); callers that take code
// points from untrusted input check them first (no surrogates, no U+0000 where they matter).
void AppendUtf8(std::string& out, char32_t cp);

enum class DecodeProblemKind : std::uint8_t {
  kInvalidBytes,      // error: bytes not valid (or not mapped) in the charset
  kTruncated,         // error: input ends inside a multibyte character or escape sequence
  kUnknownEscape,     // error: an escape sequence designating a set we do not decode
  kNonStandardKana,   // warning: SO/SI shift or raw 0xA1-0xDF byte inside ISO-2022-JP
  kUndeclaredEscape,  // warning: ESC or JIS run inside input declared kAscii
  kBomStripped,       // information: a UTF-8 byte-order mark was removed
};

// True for kInvalidBytes, kTruncated and kUnknownEscape.
bool IsError(DecodeProblemKind kind) noexcept;
// "invalid_bytes", "truncated", "unknown_escape", "nonstandard_kana", "undeclared_escape",
// "bom_stripped": stable suffixes for issue codes ("hl7v2.encoding.<suffix>").
std::string_view ToString(DecodeProblemKind kind) noexcept;
// One English sentence for an issue message (no data).
std::string_view Describe(DecodeProblemKind kind) noexcept;

struct DecodeProblem {
  DecodeProblemKind kind;
  std::size_t offset = 0;  // byte offset in the decoded input
  std::size_t length = 0;  // bytes concerned (at least 1, except kTruncated at end: the tail)
  friend bool operator==(const DecodeProblem&, const DecodeProblem&) = default;
};

enum class DecodeMode : std::uint8_t {
  kStrict,   // stop at the first error problem
  kLenient,  // replace each undecodable sequence by U+FFFD, report it, go on
};

struct DecodeOptions {
  DecodeMode mode = DecodeMode::kStrict;
  // At most this many problems are appended to `problems` (all are still handled); adjacent
  // problems of the same kind are merged into one with a longer length.
  std::size_t max_problems = 64;
};

// Decodes `bytes` in `charset` and appends the UTF-8 text to `out`. Problems (errors, warnings and
// notes) are appended to `*problems` when it is not null.
//   kStrict:  at the first error returns common::errc::kEncoding; `out` then holds the text
//             decoded before the offending byte and `problems` ends with that error.
//   kLenient: never fails; each undecodable sequence becomes U+FFFD.
Result<void> DecodeAppend(std::string_view bytes, Charset charset, std::string& out,
                          std::vector<DecodeProblem>* problems = nullptr,
                          const DecodeOptions& options = {});

// Convenience: decode into a new string. Same contract as DecodeAppend.
Result<std::string> Decode(std::string_view bytes, Charset charset,
                           std::vector<DecodeProblem>* problems = nullptr,
                           const DecodeOptions& options = {});

// Encodes UTF-8 text into `charset` (used by tests, generators and round trips, not by readers).
//   kIso2022Jp: ASCII in the ASCII set, kanji/kana via ESC $ B (CP932 repertoire, so NEC/IBM
//               characters use rows 13 and 89-92), half-width kana via ESC ( I; the encoder returns
//               to ASCII before every ASCII byte (so before every HL7 delimiter and CR/LF).
//   kCp932:     Windows-31J bytes.   kUtf8: validated copy.   kAscii / kLatin1: range checked.
// errc::kEncoding when `utf8` is not valid UTF-8 or holds a character the charset cannot encode
// (for kIso2022Jp also ESC, SO and SI, which would read back as shifts).
Result<std::string> Encode(std::string_view utf8, Charset charset);

}  // namespace kakehashi::common
