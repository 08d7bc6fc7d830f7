#include "kakehashi/common/jp_text.hpp"

#include "kakehashi/common/charset.hpp"

#include <unicode/normalizer2.h>
#include <unicode/unistr.h>

#include <array>
#include <cstdint>

namespace kakehashi::common {
namespace {

// Minimal UTF-8 reader: invalid sequences yield U+FFFD and advance one byte.
char32_t NextCodePoint(std::string_view s, std::size_t& i) {
  const auto c = static_cast<unsigned char>(s[i]);
  auto cont = [&](std::size_t k) -> int {
    if (i + k >= s.size()) return -1;
    const auto b = static_cast<unsigned char>(s[i + k]);
    return (b & 0xC0) == 0x80 ? (b & 0x3F) : -1;
  };
  if (c < 0x80) {
    ++i;
    return c;
  }
  if (c >= 0xC2 && c <= 0xDF) {
    const int c1 = cont(1);
    if (c1 >= 0) {
      i += 2;
      return (static_cast<char32_t>(c & 0x1F) << 6) | static_cast<char32_t>(c1);
    }
  } else if (c >= 0xE0 && c <= 0xEF) {
    const int c1 = cont(1), c2 = cont(2);
    if (c1 >= 0 && c2 >= 0) {
      const char32_t cp = (static_cast<char32_t>(c & 0x0F) << 12) |
                          (static_cast<char32_t>(c1) << 6) | static_cast<char32_t>(c2);
      if (cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF)) {
        i += 3;
        return cp;
      }
    }
  } else if (c >= 0xF0 && c <= 0xF4) {
    const int c1 = cont(1), c2 = cont(2), c3 = cont(3);
    if (c1 >= 0 && c2 >= 0 && c3 >= 0) {
      const char32_t cp = (static_cast<char32_t>(c & 0x07) << 18) |
                          (static_cast<char32_t>(c1) << 12) | (static_cast<char32_t>(c2) << 6) |
                          static_cast<char32_t>(c3);
      if (cp >= 0x10000 && cp <= 0x10FFFF) {
        i += 4;
        return cp;
      }
    }
  }
  ++i;
  return 0xFFFD;
}

// Half-width katakana U+FF61..U+FF9F -> full-width (JIS X 0201 order).
constexpr std::array<char16_t, 63> kHalfToFull = {
    u'。', u'「', u'」', u'、', u'・', u'ヲ', u'ァ', u'ィ', u'ゥ', u'ェ', u'ォ', u'ャ', u'ュ',
    u'ョ', u'ッ', u'ー', u'ア', u'イ', u'ウ', u'エ', u'オ', u'カ', u'キ', u'ク', u'ケ', u'コ',
    u'サ', u'シ', u'ス', u'セ', u'ソ', u'タ', u'チ', u'ツ', u'テ', u'ト', u'ナ', u'ニ', u'ヌ',
    u'ネ', u'ノ', u'ハ', u'ヒ', u'フ', u'ヘ', u'ホ', u'マ', u'ミ', u'ム', u'メ', u'モ', u'ヤ',
    u'ユ', u'ヨ', u'ラ', u'リ', u'ル', u'レ', u'ロ', u'ワ', u'ン', u'゛', u'゜'};

// Voiced form of a full-width katakana, or 0.
char32_t Voiced(char32_t c) {
  if (c == u'ウ') return u'ヴ';
  if (c >= u'カ' && c <= u'チ' && (c - u'カ') % 2 == 0) return c + 1;  // カキクケコサシスセソタチ
  if (c == u'ツ' || c == u'テ' || c == u'ト') return c + 1;
  if (c >= u'ハ' && c <= u'ホ' && (c - u'ハ') % 3 == 0) return c + 1;  // ハヒフヘホ
  if (c == u'ワ') return u'ヷ';
  if (c == u'ヲ') return u'ヺ';
  return 0;
}

char32_t SemiVoiced(char32_t c) {
  if (c >= u'ハ' && c <= u'ホ' && (c - u'ハ') % 3 == 0) return c + 2;
  return 0;
}

bool IsKana(char32_t c) {
  return (c >= 0x3041 && c <= 0x3096) || (c >= 0x30A1 && c <= 0x30FA);
}

const icu::Normalizer2* Nfkc() {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* n = icu::Normalizer2::getNFKCInstance(status);
  return U_SUCCESS(status) ? n : nullptr;
}

}  // namespace

std::string NormalizeNfkc(std::string_view utf8) {
  const icu::Normalizer2* nfkc = Nfkc();
  if (nfkc == nullptr) return std::string(utf8);
  const icu::UnicodeString in = icu::UnicodeString::fromUTF8(
      icu::StringPiece(utf8.data(), static_cast<int32_t>(utf8.size())));
  UErrorCode status = U_ZERO_ERROR;
  const icu::UnicodeString normalized = nfkc->normalize(in, status);
  if (U_FAILURE(status)) return std::string(utf8);
  std::string out;
  normalized.toUTF8String(out);
  return out;
}

std::string HalfwidthToFullwidthKana(std::string_view utf8) {
  std::string out;
  out.reserve(utf8.size());
  std::size_t i = 0;
  while (i < utf8.size()) {
    char32_t cp = NextCodePoint(utf8, i);
    if (cp < 0xFF61 || cp > 0xFF9F) {
      AppendUtf8(out, cp);
      continue;
    }
    char32_t full = kHalfToFull[cp - 0xFF61];
    if (cp != 0xFF9E && cp != 0xFF9F && i < utf8.size()) {
      std::size_t j = i;
      const char32_t next = NextCodePoint(utf8, j);
      if (next == 0xFF9E || next == 0xFF9F) {
        const char32_t joined = next == 0xFF9E ? Voiced(full) : SemiVoiced(full);
        if (joined != 0) {
          full = joined;
          i = j;
        }
      }
    }
    AppendUtf8(out, full);
  }
  return out;
}

std::string FullwidthDigitsToAscii(std::string_view utf8) {
  std::string out;
  out.reserve(utf8.size());
  std::size_t i = 0;
  while (i < utf8.size()) {
    const std::size_t start = i;
    const char32_t cp = NextCodePoint(utf8, i);
    if (cp >= 0xFF10 && cp <= 0xFF19) {
      out.push_back(static_cast<char>('0' + (cp - 0xFF10)));
    } else if (cp == 0xFFFD) {
      AppendUtf8(out, cp);
    } else {
      out.append(utf8.substr(start, i - start));
    }
  }
  return out;
}

std::string FullwidthToAscii(std::string_view utf8) {
  std::string out;
  out.reserve(utf8.size());
  std::size_t i = 0;
  while (i < utf8.size()) {
    const std::size_t start = i;
    const char32_t cp = NextCodePoint(utf8, i);
    if (cp >= 0xFF01 && cp <= 0xFF5E) {
      out.push_back(static_cast<char>(0x21 + (cp - 0xFF01)));
    } else if (cp == 0x3000) {
      out.push_back(' ');
    } else if (cp == 0xFFFD) {
      AppendUtf8(out, cp);
    } else {
      out.append(utf8.substr(start, i - start));
    }
  }
  return out;
}

std::string NormalizeForMatching(std::string_view utf8) {
  // 1. Join detached spacing marks ゛ (U+309B) / ゜ (U+309C) to the preceding kana; NFKC would turn
  //    them into a space plus a combining mark.
  std::string joined;
  joined.reserve(utf8.size());
  {
    std::size_t i = 0;
    char32_t prev = 0;
    while (i < utf8.size()) {
      const char32_t cp = NextCodePoint(utf8, i);
      if ((cp == 0x309B || cp == 0x309C) && IsKana(prev)) {
        AppendUtf8(joined, cp == 0x309B ? 0x3099 : 0x309A);  // combining; NFKC composes
      } else {
        AppendUtf8(joined, cp);
      }
      prev = cp;
    }
  }
  const std::string nfkc = NormalizeNfkc(joined);
  // 2. Fold dashes and waves, collapse white space, trim.
  std::string out;
  out.reserve(nfkc.size());
  std::size_t i = 0;
  char32_t prev = 0;
  bool pending_space = false;
  while (i < nfkc.size()) {
    char32_t cp = NextCodePoint(nfkc, i);
    if ((cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212 || cp == 0xFF0D || cp == 0xFE63 ||
        cp == 0x2043 || (cp == 0x30FC && prev >= '0' && prev <= '9')) {
      cp = '-';
    } else if (cp == 0x301C || cp == 0xFF5E) {
      cp = '~';
    }
    if (cp == ' ' || cp == '\t' || cp == '\r' || cp == '\n' || cp == 0x3000) {
      pending_space = !out.empty();
      continue;
    }
    if (pending_space) {
      out.push_back(' ');
      pending_space = false;
    }
    AppendUtf8(out, cp);
    prev = cp;
  }
  return out;
}

}  // namespace kakehashi::common
