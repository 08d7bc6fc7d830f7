// Whole-buffer decoders. ICU is used only to build the CP932 table once; the loops below run on
// flat arrays because the HL7 parser decodes every message (goal: >= 100,000 msgs/s, issue #4).
#include "kakehashi/common/charset.hpp"

#include "kakehashi/common/errc.hpp"

#include <unicode/ucnv.h>
#include <unicode/ucnv_err.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <memory>
#include <unordered_map>

namespace kakehashi::common {
namespace {

constexpr char32_t kNoChar = 0xFFFFFFFF;
constexpr char32_t kReplacement = 0xFFFD;

// CP932 double-byte table: lead 0x81-0x9F, 0xE0-0xFC (60 bytes) x trail 0x40-0xFC (189 bytes).
constexpr std::size_t kTrailCount = 0xFC - 0x40 + 1;
constexpr std::size_t kLeadCount = 60;

constexpr bool IsCp932Lead(unsigned b) {
  return (b >= 0x81 && b <= 0x9F) || (b >= 0xE0 && b <= 0xFC);
}
constexpr std::size_t LeadIndex(unsigned b) {
  return b <= 0x9F ? std::size_t{b - 0x81} : std::size_t{b - 0xE0 + 0x1F};
}

struct Cp932Tables {
  std::array<char32_t, kLeadCount * kTrailCount> dbcs{};
  std::unordered_map<char32_t, std::uint16_t> reverse;  // code point -> CP932 code (lowest wins)
};

// Reads ICU's windows-31j mapping (ibm-943_P15A-2003 on ICU 72) into arrays. Unmapped codes (no
// character, or ICU would substitute) stay kNoChar.
const Cp932Tables& Tables() {
  static const std::unique_ptr<Cp932Tables> tables = [] {
    auto t = std::make_unique<Cp932Tables>();
    t->dbcs.fill(kNoChar);
    UErrorCode status = U_ZERO_ERROR;
    UConverter* conv = ucnv_open("windows-31j", &status);
    if (U_FAILURE(status)) {
      // ICU data without the Japanese converters: every Japanese character becomes invalid;
      // decoding still reports errors with offsets instead of crashing.
      return t;
    }
    ucnv_setToUCallBack(conv, UCNV_TO_U_CALLBACK_STOP, nullptr, nullptr, nullptr, &status);
    for (unsigned lead = 0x81; lead <= 0xFC; ++lead) {
      if (!IsCp932Lead(lead)) continue;
      for (unsigned trail = 0x40; trail <= 0xFC; ++trail) {
        if (trail == 0x7F) continue;
        const char in[2] = {static_cast<char>(lead), static_cast<char>(trail)};
        UChar buf[4];
        status = U_ZERO_ERROR;
        ucnv_reset(conv);
        const int32_t n = ucnv_toUChars(conv, buf, 4, in, 2, &status);
        if (U_FAILURE(status) || n <= 0) continue;
        char32_t cp = buf[0];
        if (n == 2 && buf[0] >= 0xD800 && buf[0] <= 0xDBFF) {
          cp = 0x10000 + ((static_cast<char32_t>(buf[0]) - 0xD800) << 10) + (buf[1] - 0xDC00);
        } else if (n != 1) {
          continue;
        }
        if (cp == 0x1A || cp == 0xFFFD) continue;
        t->dbcs[LeadIndex(lead) * kTrailCount + (trail - 0x40)] = cp;
        t->reverse.emplace(cp, static_cast<std::uint16_t>((lead << 8) | trail));
      }
    }
    ucnv_close(conv);
    // Encoding only: the JIS X 0208 code points of the six characters CP932 maps elsewhere
    // (digest §8 "JIS vs CP932 mapping"), so text decoded by a JIS-standard decoder re-encodes.
    t->reverse.emplace(0x301C, 0x8160);  // 〜 (CP932: U+FF5E)
    t->reverse.emplace(0x2016, 0x8161);  // ‖ (U+2225)
    t->reverse.emplace(0x2212, 0x817C);  // − (U+FF0D)
    t->reverse.emplace(0x00A2, 0x8191);  // ¢ (U+FFE0)
    t->reverse.emplace(0x00A3, 0x8192);  // £ (U+FFE1)
    t->reverse.emplace(0x00AC, 0x81CA);  // ¬ (U+FFE2)
    return t;
  }();
  return *tables;
}

char32_t LookupCp932(unsigned lead, unsigned trail) {
  if (!IsCp932Lead(lead) || trail < 0x40 || trail > 0xFC || trail == 0x7F) return kNoChar;
  return Tables().dbcs[LeadIndex(lead) * kTrailCount + (trail - 0x40)];
}

// JIS X 0208 row/cell (j1, j2 in 0x21-0x7E) -> Shift_JIS, digest §8:
//   s1 = ((j1+1)>>1) + (j1 <= 0x5E ? 0x70 : 0xB0)
//   s2 = j2 + ((j1&1) ? (j2 >= 0x60 ? 0x20 : 0x1F) : 0x7E)
constexpr unsigned JisToSjisLead(unsigned j1) {
  return ((j1 + 1) >> 1) + (j1 <= 0x5E ? 0x70 : 0xB0);
}
constexpr unsigned JisToSjisTrail(unsigned j1, unsigned j2) {
  return j2 + ((j1 & 1) ? (j2 >= 0x60 ? 0x20 : 0x1F) : 0x7E);
}
static_assert(JisToSjisLead(0x4B) == 0x96 && JisToSjisTrail(0x4B, 0x5C) == 0x7B);  // 本
static_assert(JisToSjisLead(0x2D) == 0x87 && JisToSjisTrail(0x2D, 0x21) == 0x40);  // ①
static_assert(JisToSjisLead(0x30) == 0x88 && JisToSjisTrail(0x30, 0x26) == 0xA4);  // 愛

// ISO-2022-JP's JIS X 0208 pairs (j1, j2 in 0x21-0x7E) decoded through the CP932 table, as one
// 94 x 94 array built once: the decoder's per-character lookup is then one load instead of the
// Shift_JIS arithmetic, the table guard and the range checks of LookupCp932 (the ISO-2022-JP
// decoder was 3 % of the instructions of a whole conversion; docs/performance.md).
struct JisTable {
  std::array<char32_t, 94 * 94> cp{};
};
const JisTable& Jis0208() {
  static const std::unique_ptr<JisTable> table = [] {
    auto t = std::make_unique<JisTable>();
    for (unsigned j1 = 0x21; j1 <= 0x7E; ++j1) {
      for (unsigned j2 = 0x21; j2 <= 0x7E; ++j2) {
        t->cp[(j1 - 0x21) * 94 + (j2 - 0x21)] =
            LookupCp932(JisToSjisLead(j1), JisToSjisTrail(j1, j2));
      }
    }
    return t;
  }();
  return *table;
}

// Inverse (for Encode): Shift_JIS double-byte code -> JIS row/cell.
void SjisToJis(unsigned s1, unsigned s2, unsigned& j1, unsigned& j2) {
  unsigned row_base = s1 <= 0x9F ? (s1 - 0x70) : (s1 - 0xB0);
  row_base = row_base * 2;  // = j1 + 1 when j1 is odd, j1 when even (after adjustment below)
  if (s2 >= 0x9F) {
    j1 = row_base;
    j2 = s2 - 0x7E;
  } else {
    j1 = row_base - 1;
    j2 = s2 - (s2 >= 0x80 ? 0x20 : 0x1F);
  }
}

// Output buffer with a raw write pointer. Starts with the usual size (`expected` bytes) and grows
// when a rare expansion (half-width kana 1 -> 3 bytes, U+FFFD for 1 bad byte) needs more, so a
// message's text does not keep 3x its size in capacity.
class Writer {
 public:
  Writer(std::string& out, std::size_t expected) : out_(out), base_(out.size()) {
    out_.resize(base_ + expected + 16);
    p_ = out_.data() + base_;
    end_ = out_.data() + out_.size();
  }
  ~Writer() { out_.resize(static_cast<std::size_t>(p_ - out_.data())); }
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  void Byte(char c) {
    Ensure(1);
    *p_++ = c;
  }
  void Bytes(const char* s, std::size_t n) {
    Ensure(n);
    std::memcpy(p_, s, n);
    p_ += n;
  }
  void CodePoint(char32_t cp) {
    Ensure(4);
    if (cp < 0x80) {
      *p_++ = static_cast<char>(cp);
    } else if (cp < 0x800) {
      *p_++ = static_cast<char>(0xC0 | (cp >> 6));
      *p_++ = static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      *p_++ = static_cast<char>(0xE0 | (cp >> 12));
      *p_++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *p_++ = static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      *p_++ = static_cast<char>(0xF0 | (cp >> 18));
      *p_++ = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      *p_++ = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      *p_++ = static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

 private:
  void Ensure(std::size_t n) {
    if (static_cast<std::size_t>(end_ - p_) >= n) return;
    const auto used = static_cast<std::size_t>(p_ - out_.data());
    out_.resize(std::max(out_.size() * 2, used + n + 64));
    p_ = out_.data() + used;
    end_ = out_.data() + out_.size();
  }

  std::string& out_;
  std::size_t base_;
  char* p_;
  char* end_;
};

// Collects problems; merges adjacent problems of one kind; answers "stop now?" in strict mode.
class Problems {
 public:
  Problems(std::vector<DecodeProblem>* sink, const DecodeOptions& options)
      : sink_(sink), options_(options) {}

  // Returns true when decoding must stop (strict mode and an error).
  bool Add(DecodeProblemKind kind, std::size_t offset, std::size_t length) {
    const bool error = IsError(kind);
    if (error) failed_ = true;
    if (sink_ != nullptr) {
      if (!sink_->empty() && sink_->size() > first_ && sink_->back().kind == kind &&
          sink_->back().offset + sink_->back().length == offset) {
        sink_->back().length += length;
      } else if (added_ < options_.max_problems) {
        sink_->push_back({kind, offset, length});
        ++added_;
      }
    }
    return error && options_.mode == DecodeMode::kStrict;
  }
  bool Failed() const { return failed_; }
  bool Strict() const { return options_.mode == DecodeMode::kStrict; }
  void MarkFirst() { first_ = sink_ != nullptr ? sink_->size() : 0; }

 private:
  std::vector<DecodeProblem>* sink_;
  const DecodeOptions& options_;
  std::size_t added_ = 0;
  std::size_t first_ = 0;
  bool failed_ = false;
};

bool IsUtf8Cont(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

// Length of the well-formed UTF-8 sequence at s[i] (1-4), or 0 when ill-formed; on 0, *bad is the
// length of the maximal ill-formed subpart (>= 1), which is replaced by one U+FFFD (Unicode §3.9).
std::size_t Utf8SequenceLength(const unsigned char* s, std::size_t n, std::size_t i,
                               std::size_t* bad) {
  const unsigned c = s[i];
  if (c < 0x80) return 1;
  std::size_t need = 0;
  unsigned lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    *bad = 1;
    return 0;
  }
  std::size_t k = 1;
  for (; k <= need; ++k) {
    if (i + k >= n) {
      *bad = k;
      return 0;
    }
    const unsigned cc = s[i + k];
    const unsigned l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (cc < l || cc > h) {
      *bad = k;
      return 0;
    }
  }
  return need + 1;
}

Result<void> DecodeUtf8(std::string_view bytes, std::string& out, Problems& problems) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  if (n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) {
    problems.Add(DecodeProblemKind::kBomStripped, 0, 3);
    i = 3;
  }
  Writer w(out, n - i);
  while (i < n) {
    // ASCII fast path, 8 bytes at a time.
    while (i + 8 <= n) {
      std::uint64_t chunk;
      std::memcpy(&chunk, s + i, 8);
      if ((chunk & 0x8080808080808080ULL) != 0) break;
      w.Bytes(bytes.data() + i, 8);
      i += 8;
    }
    if (i >= n) break;
    std::size_t bad = 0;
    const std::size_t len = Utf8SequenceLength(s, n, i, &bad);
    if (len != 0) {
      w.Bytes(bytes.data() + i, len);
      i += len;
      continue;
    }
    const bool at_end =
        i + bad >= n && s[i] >= 0xC2 && s[i] <= 0xF4 && (bad == 1 || IsUtf8Cont(s[i + bad - 1]));
    const auto kind = at_end ? DecodeProblemKind::kTruncated : DecodeProblemKind::kInvalidBytes;
    const std::size_t length = at_end ? n - i : bad;
    if (problems.Add(kind, i, length)) return make_error_code(errc::kEncoding);
    w.CodePoint(kReplacement);
    i += length;
  }
  return {};
}

Result<void> DecodeLatin1(std::string_view bytes, std::string& out) {
  Writer w(out, bytes.size() * 2);
  for (const char c : bytes) w.CodePoint(static_cast<unsigned char>(c));
  return {};
}

Result<void> DecodeCp932(std::string_view bytes, std::string& out, Problems& problems) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  Writer w(out, n + n / 2);
  std::size_t i = 0;
  while (i < n) {
    const unsigned b = s[i];
    if (b < 0x80) {
      w.Byte(static_cast<char>(b));
      ++i;
    } else if (b >= 0xA1 && b <= 0xDF) {  // JIS X 0201 katakana
      w.CodePoint(0xFF61 + (b - 0xA1));
      ++i;
    } else if (IsCp932Lead(b)) {
      if (i + 1 >= n) {
        if (problems.Add(DecodeProblemKind::kTruncated, i, 1)) {
          return make_error_code(errc::kEncoding);
        }
        w.CodePoint(kReplacement);
        ++i;
        continue;
      }
      const char32_t cp = LookupCp932(b, s[i + 1]);
      if (cp == kNoChar) {
        // A trail byte outside 0x40-0xFC may be ASCII (a delimiter): consume only the lead.
        const unsigned t = s[i + 1];
        const std::size_t len = (t >= 0x40 && t <= 0xFC && t != 0x7F) ? 2 : 1;
        if (problems.Add(DecodeProblemKind::kInvalidBytes, i, len)) {
          return make_error_code(errc::kEncoding);
        }
        w.CodePoint(kReplacement);
        i += len;
      } else {
        w.CodePoint(cp);
        i += 2;
      }
    } else {
      if (problems.Add(DecodeProblemKind::kInvalidBytes, i, 1)) {
        return make_error_code(errc::kEncoding);
      }
      w.CodePoint(kReplacement);
      ++i;
    }
  }
  return {};
}

enum class JisSet : std::uint8_t { kAscii, kJis0208, kKana, kUnsupported1, kUnsupported2 };

// The end of the run of bytes from s[i] that the ISO-2022-JP decoder copies as they are in the
// ASCII set: below 0x80 and none of ESC (0x1B), SO (0x0E), SI (0x0F). Eight bytes at a time
// (a JAHIS message is mostly such bytes), then byte by byte from the first word that holds one
// of them, so the answer is the byte loop's.
std::size_t PlainAsciiEnd(const unsigned char* s, std::size_t i, std::size_t n) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  // Non-zero when some byte of v is zero (exact as a yes/no answer).
  const auto has_zero = [](std::uint64_t v) { return (v - kOnes) & ~v & kHigh; };
  while (i + 8 <= n) {
    std::uint64_t x;
    std::memcpy(&x, s + i, 8);
    const std::uint64_t esc = x ^ (kOnes * 0x1B);
    const std::uint64_t shift = (x & ~kOnes) ^ (kOnes * 0x0E);  // 0x0E and 0x0F alike
    if (((x & kHigh) | has_zero(esc) | has_zero(shift)) != 0) break;
    i += 8;
  }
  while (i < n && s[i] < 0x80 && s[i] != 0x1B && s[i] != 0x0E && s[i] != 0x0F) ++i;
  return i;
}

// ISO-2022-JP state machine (digest §8 table). `declared_ascii`: the caller declared US-ASCII, so
// any designation is reported as kUndeclaredEscape (once) but still decoded.
Result<void> DecodeIso2022Jp(std::string_view bytes, std::string& out, Problems& problems,
                             bool declared_ascii) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  Writer w(out, n + n / 2);
  JisSet set = JisSet::kAscii;
  bool shift_out = false;  // SO active: 0x21-0x5F are JIS X 0201 katakana
  bool undeclared_reported = false;
  const JisTable* jis = nullptr;  // fetched at the first JIS X 0208 character
  std::size_t i = 0;
  auto fail = [&](DecodeProblemKind kind, std::size_t at, std::size_t len) {
    return problems.Add(kind, at, len);
  };
  while (i < n) {
    const unsigned b = s[i];
    if (set == JisSet::kAscii && !shift_out) {
      // Fast path: copy printable ASCII and ordinary controls.
      const std::size_t j = PlainAsciiEnd(s, i, n);
      if (j > i) {
        w.Bytes(bytes.data() + i, j - i);
        i = j;
        continue;
      }
    }
    if (b == 0x1B) {
      if (declared_ascii && !undeclared_reported) {
        undeclared_reported = true;
        problems.Add(DecodeProblemKind::kUndeclaredEscape, i, 1);
      }
      // Recognised: ESC ( B, ESC ( J, ESC ( I, ESC $ B, ESC $ @, ESC & @ (announcer).
      if (i + 2 >= n) {
        if (fail(DecodeProblemKind::kTruncated, i, n - i)) return make_error_code(errc::kEncoding);
        w.CodePoint(kReplacement);
        i = n;
        break;
      }
      const unsigned c1 = s[i + 1], c2 = s[i + 2];
      if (c1 == '(' && (c2 == 'B' || c2 == 'J')) {
        set = JisSet::kAscii;
        i += 3;
      } else if (c1 == '(' && c2 == 'I') {
        set = JisSet::kKana;
        i += 3;
      } else if (c1 == '$' && (c2 == 'B' || c2 == '@')) {
        set = JisSet::kJis0208;
        i += 3;
      } else if (c1 == '&' && c2 == '@') {
        i += 3;
      } else if (c1 == '$' && c2 == '(' && i + 3 < n && (s[i + 3] == 'B' || s[i + 3] == '@')) {
        set = JisSet::kJis0208;  // ESC $ ( B: the long form of ESC $ B (ISO 2022 G0, 94^2 set)
        i += 4;
      } else {
        // Unknown designation: ESC I... F with intermediates 0x20-0x2F and a final 0x30-0x7E.
        std::size_t k = i + 1;
        while (k < n && s[k] >= 0x20 && s[k] <= 0x2F) ++k;
        if (k >= n) {
          if (fail(DecodeProblemKind::kTruncated, i, n - i)) {
            return make_error_code(errc::kEncoding);
          }
          w.CodePoint(kReplacement);
          i = n;
          break;
        }
        const std::size_t len = (s[k] >= 0x30 && s[k] <= 0x7E) ? k + 1 - i : k - i;
        if (fail(DecodeProblemKind::kUnknownEscape, i, len)) {
          return make_error_code(errc::kEncoding);
        }
        // The characters of an unknown set are replaced one by one until the next ESC or line end;
        // multi-byte sets (ESC $ ...) take two bytes per character.
        set = c1 == '$' ? JisSet::kUnsupported2 : JisSet::kUnsupported1;
        w.CodePoint(kReplacement);
        i += len;
      }
      continue;
    }
    if (b == '\r' || b == '\n') {  // digest §8: reset to ASCII at CR/LF
      set = JisSet::kAscii;
      shift_out = false;
      w.Byte(static_cast<char>(b));
      ++i;
      continue;
    }
    if (b == 0x0E || b == 0x0F) {  // SO / SI (CP50221 habit)
      shift_out = b == 0x0E;
      problems.Add(DecodeProblemKind::kNonStandardKana, i, 1);
      ++i;
      continue;
    }
    if (b >= 0x80) {
      if (b >= 0xA1 && b <= 0xDF) {  // raw 8-bit JIS X 0201 katakana
        problems.Add(DecodeProblemKind::kNonStandardKana, i, 1);
        w.CodePoint(0xFF61 + (b - 0xA1));
        ++i;
        continue;
      }
      if (fail(DecodeProblemKind::kInvalidBytes, i, 1)) return make_error_code(errc::kEncoding);
      w.CodePoint(kReplacement);
      ++i;
      continue;
    }
    if (b < 0x21 || b == 0x7F) {  // controls and space pass through in every set
      w.Byte(static_cast<char>(b));
      ++i;
      continue;
    }
    if (shift_out || set == JisSet::kKana) {
      if (b <= 0x5F) {
        w.CodePoint(0xFF61 + (b - 0x21));
        ++i;
      } else {
        // 0x60-0x7E have no kana: an error, but in lenient mode the byte is kept as ASCII so a
        // delimiter (`|`, `~`) written without a return to ASCII still splits the message.
        if (fail(DecodeProblemKind::kInvalidBytes, i, 1)) return make_error_code(errc::kEncoding);
        w.Byte(static_cast<char>(b));
        ++i;
      }
      continue;
    }
    switch (set) {
      case JisSet::kAscii:
        w.Byte(static_cast<char>(b));
        ++i;
        break;
      case JisSet::kJis0208: {
        if (i + 1 >= n) {
          if (fail(DecodeProblemKind::kTruncated, i, 1)) return make_error_code(errc::kEncoding);
          w.CodePoint(kReplacement);
          ++i;
          break;
        }
        const unsigned b2 = s[i + 1];
        if (b2 < 0x21 || b2 > 0x7E) {
          // Half a pair before a control/8-bit byte: only the first byte is bad.
          if (fail(DecodeProblemKind::kInvalidBytes, i, 1)) {
            return make_error_code(errc::kEncoding);
          }
          w.CodePoint(kReplacement);
          ++i;
          break;
        }
        if (jis == nullptr) jis = &Jis0208();
        const char32_t cp = jis->cp[(b - 0x21) * 94 + (b2 - 0x21)];
        if (cp == kNoChar) {
          if (fail(DecodeProblemKind::kInvalidBytes, i, 2)) {
            return make_error_code(errc::kEncoding);
          }
          w.CodePoint(kReplacement);
        } else {
          w.CodePoint(cp);
        }
        i += 2;
        break;
      }
      case JisSet::kUnsupported2:
        if (i + 1 < n && s[i + 1] >= 0x21 && s[i + 1] <= 0x7E) {
          i += 2;
        } else {
          ++i;
        }
        w.CodePoint(kReplacement);
        break;
      case JisSet::kUnsupported1:
      case JisSet::kKana:
        w.CodePoint(kReplacement);
        ++i;
        break;
    }
  }
  return {};
}

std::string NameKey(std::string_view name) {
  std::string key;
  key.reserve(name.size());
  for (const char c : name) {
    if (c == ' ' || c == '-' || c == '_' || c == '/' || c == '\t') continue;
    key.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
  }
  return key;
}

}  // namespace

std::string_view ToString(Charset charset) noexcept {
  switch (charset) {
    case Charset::kAscii: return "US-ASCII";
    case Charset::kIso2022Jp: return "ISO-2022-JP";
    case Charset::kCp932: return "Windows-31J";
    case Charset::kUtf8: return "UTF-8";
    case Charset::kLatin1: return "ISO-8859-1";
  }
  return "unknown";
}

std::optional<Charset> CharsetFromName(std::string_view name) noexcept {
  const std::string key = NameKey(name);
  if (key.empty()) return std::nullopt;
  struct Entry {
    std::string_view key;
    Charset charset;
  };
  // Keys are NameKey() spellings (upper case, no space - _ /).
  static constexpr Entry kNames[] = {
      {"ASCII", Charset::kAscii},
      {"USASCII", Charset::kAscii},
      {"ISOIR6", Charset::kAscii},
      {"ANSIX3.41968", Charset::kAscii},
      {"ISOIR14", Charset::kIso2022Jp},
      {"ISOIR13", Charset::kIso2022Jp},
      {"ISOIR87", Charset::kIso2022Jp},
      {"ISOIR159", Charset::kIso2022Jp},
      {"ISO20221994", Charset::kIso2022Jp},
      {"ISO2022", Charset::kIso2022Jp},
      {"ISO2022JP", Charset::kIso2022Jp},
      {"ISO2022JPMS", Charset::kIso2022Jp},
      {"CSISO2022JP", Charset::kIso2022Jp},
      {"CP50220", Charset::kIso2022Jp},
      {"CP50221", Charset::kIso2022Jp},
      {"CP50222", Charset::kIso2022Jp},
      {"JIS", Charset::kIso2022Jp},
      {"JISX0208", Charset::kIso2022Jp},
      // DICOM-style spellings seen in mixed radiology feeds.
      {"ISO2022IR87", Charset::kIso2022Jp},
      {"ISO2022IR13", Charset::kIso2022Jp},
      {"ISO2022IR6", Charset::kAscii},
      {"ISOIR192", Charset::kUtf8},
      {"SHIFTJIS", Charset::kCp932},
      {"SJIS", Charset::kCp932},
      {"CP932", Charset::kCp932},
      {"MS932", Charset::kCp932},
      {"WINDOWS31J", Charset::kCp932},
      {"WINDOWS932", Charset::kCp932},
      {"CSSHIFTJIS", Charset::kCp932},
      {"XSJIS", Charset::kCp932},
      {"UNICODEUTF8", Charset::kUtf8},
      {"UTF8", Charset::kUtf8},
      {"UNICODE", Charset::kUtf8},
      {"88591", Charset::kLatin1},
      {"ISO88591", Charset::kLatin1},
      {"ISOIR100", Charset::kLatin1},
      {"LATIN1", Charset::kLatin1},
  };
  for (const auto& e : kNames) {
    if (e.key == key) return e.charset;
  }
  // "ISO IR 87" etc. with an extra space were folded above; "ISO-IR-87" too.
  return std::nullopt;
}

Charset SniffCharset(std::string_view bytes) noexcept {
  bool high = false;
  for (const char c : bytes) {
    const auto b = static_cast<unsigned char>(c);
    if (b == 0x1B) return Charset::kIso2022Jp;
    if (b >= 0x80) high = true;
  }
  if (!high) return Charset::kIso2022Jp;
  std::size_t bad = 0;
  if (IsValidUtf8(bytes, &bad)) return Charset::kUtf8;
  // UTF-8 cut inside its last character (a truncated file) is still UTF-8.
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t bad_len = 0;
  if (bad + 4 > bytes.size() && s[bad] >= 0xC2 && s[bad] <= 0xF4 &&
      Utf8SequenceLength(s, bytes.size(), bad, &bad_len) == 0 && bad + bad_len >= bytes.size()) {
    return Charset::kUtf8;
  }
  return Charset::kCp932;
}

bool IsValidUtf8(std::string_view bytes, std::size_t* error_offset) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t i = 0;
  while (i < n) {
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    std::size_t bad = 0;
    const std::size_t len = Utf8SequenceLength(s, n, i, &bad);
    if (len == 0) {
      if (error_offset != nullptr) *error_offset = i;
      return false;
    }
    i += len;
  }
  return true;
}

bool IsError(DecodeProblemKind kind) noexcept {
  return kind == DecodeProblemKind::kInvalidBytes || kind == DecodeProblemKind::kTruncated ||
         kind == DecodeProblemKind::kUnknownEscape;
}

std::string_view ToString(DecodeProblemKind kind) noexcept {
  switch (kind) {
    case DecodeProblemKind::kInvalidBytes: return "invalid_bytes";
    case DecodeProblemKind::kTruncated: return "truncated";
    case DecodeProblemKind::kUnknownEscape: return "unknown_escape";
    case DecodeProblemKind::kNonStandardKana: return "nonstandard_kana";
    case DecodeProblemKind::kUndeclaredEscape: return "undeclared_escape";
    case DecodeProblemKind::kBomStripped: return "bom_stripped";
  }
  return "unknown";
}

std::string_view Describe(DecodeProblemKind kind) noexcept {
  switch (kind) {
    case DecodeProblemKind::kInvalidBytes:
      return "bytes are not valid in the character encoding; check MSH-18 or the producer's "
             "encoding setting";
    case DecodeProblemKind::kTruncated:
      return "input ends inside a multibyte character or an escape sequence; the data is "
             "truncated";
    case DecodeProblemKind::kUnknownEscape:
      return "an ISO 2022 escape sequence designates a character set that is not decoded (only "
             "ASCII, JIS X 0201 and JIS X 0208 are)";
    case DecodeProblemKind::kNonStandardKana:
      return "half-width kana written with SO/SI or 8-bit bytes inside ISO-2022-JP (CP5022x "
             "habit); decoded as JIS X 0201 katakana";
    case DecodeProblemKind::kUndeclaredEscape:
      return "ISO 2022 escape sequences in input declared as ASCII; decoded as ISO-2022-JP";
    case DecodeProblemKind::kBomStripped: return "a UTF-8 byte-order mark was removed";
  }
  return "unknown decoding problem";
}

Result<void> DecodeAppend(std::string_view bytes, Charset charset, std::string& out,
                          std::vector<DecodeProblem>* problems, const DecodeOptions& options) {
  Problems p(problems, options);
  p.MarkFirst();
  switch (charset) {
    case Charset::kAscii: return DecodeIso2022Jp(bytes, out, p, /*declared_ascii=*/true);
    case Charset::kIso2022Jp: return DecodeIso2022Jp(bytes, out, p, /*declared_ascii=*/false);
    case Charset::kCp932: return DecodeCp932(bytes, out, p);
    case Charset::kUtf8: return DecodeUtf8(bytes, out, p);
    case Charset::kLatin1: return DecodeLatin1(bytes, out);
  }
  return make_error_code(errc::kUnsupported);
}

Result<std::string> Decode(std::string_view bytes, Charset charset,
                           std::vector<DecodeProblem>* problems, const DecodeOptions& options) {
  std::string out;
  KAKEHASHI_TRY_VOID(DecodeAppend(bytes, charset, out, problems, options));
  return out;
}

Result<std::string> Encode(std::string_view utf8, Charset charset) {
  if (!IsValidUtf8(utf8)) return make_error_code(errc::kEncoding);
  if (charset == Charset::kUtf8) return std::string(utf8);
  std::string out;
  out.reserve(utf8.size() * 2);
  const auto* s = reinterpret_cast<const unsigned char*>(utf8.data());
  const std::size_t n = utf8.size();
  JisSet set = JisSet::kAscii;
  auto designate = [&](JisSet wanted) {
    if (set == wanted) return;
    set = wanted;
    switch (wanted) {
      case JisSet::kAscii: out += "\x1B(B"; break;
      case JisSet::kJis0208: out += "\x1B$B"; break;
      case JisSet::kKana: out += "\x1B(I"; break;
      default: break;
    }
  };
  std::size_t i = 0;
  while (i < n) {
    std::size_t bad = 0;
    const std::size_t len = Utf8SequenceLength(s, n, i, &bad);
    char32_t cp = s[i];
    if (len == 2) cp = ((s[i] & 0x1F) << 6) | (s[i + 1] & 0x3F);
    if (len == 3) cp = ((s[i] & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F);
    if (len == 4) {
      cp = ((s[i] & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) | ((s[i + 2] & 0x3F) << 6) |
           (s[i + 3] & 0x3F);
    }
    i += len;
    if (cp < 0x80) {
      // ESC, SO and SI would be read back as shifts: not representable in ISO-2022-JP text.
      if (charset == Charset::kIso2022Jp && (cp == 0x1B || cp == 0x0E || cp == 0x0F)) {
        return make_error_code(errc::kEncoding);
      }
      if (charset == Charset::kIso2022Jp) designate(JisSet::kAscii);
      out.push_back(static_cast<char>(cp));
      continue;
    }
    if (charset == Charset::kAscii) return make_error_code(errc::kEncoding);
    if (charset == Charset::kLatin1) {
      if (cp > 0xFF) return make_error_code(errc::kEncoding);
      out.push_back(static_cast<char>(cp));
      continue;
    }
    if (cp >= 0xFF61 && cp <= 0xFF9F) {  // half-width katakana
      if (charset == Charset::kCp932) {
        out.push_back(static_cast<char>(0xA1 + (cp - 0xFF61)));
      } else {
        designate(JisSet::kKana);
        out.push_back(static_cast<char>(0x21 + (cp - 0xFF61)));
      }
      continue;
    }
    const auto& reverse = Tables().reverse;
    const auto it = reverse.find(cp);
    if (it == reverse.end()) return make_error_code(errc::kEncoding);
    const unsigned s1 = it->second >> 8, s2 = it->second & 0xFF;
    if (charset == Charset::kCp932) {
      out.push_back(static_cast<char>(s1));
      out.push_back(static_cast<char>(s2));
      continue;
    }
    unsigned j1 = 0, j2 = 0;
    SjisToJis(s1, s2, j1, j2);
    if (j1 < 0x21 || j1 > 0x7E || j2 < 0x21 || j2 > 0x7E) {
      return make_error_code(errc::kEncoding);  // IBM extension rows FA-FC: no JIS position
    }
    designate(JisSet::kJis0208);
    out.push_back(static_cast<char>(j1));
    out.push_back(static_cast<char>(j2));
  }
  if (charset == Charset::kIso2022Jp) designate(JisSet::kAscii);
  return out;
}

void AppendUtf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace kakehashi::common
