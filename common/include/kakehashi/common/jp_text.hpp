// Japanese text normalisation helpers (digest ssmix2-hl7v2.md §8 "For matching only").
//
// Input and output are UTF-8. Invalid UTF-8 sequences in the input become U+FFFD. These functions
// are for *matching* (code lookups, comparisons, identifiers); keep the original text for FHIR
// `display`/`text`.
// Thread-safety: reentrant (ICU's normaliser instance is immutable and shared).
#pragma once

#include <string>
#include <string_view>

namespace kakehashi::common {

// Unicode NFKC (ICU): full-width ASCII -> ASCII, half-width kana -> full-width (with (han)dakuten
// composed: ｶﾞ -> ガ), compatibility characters (① -> 1, ㈱ -> (株), ㍉ -> ミリ) decomposed.
std::string NormalizeNfkc(std::string_view utf8);

// Half-width katakana (U+FF61-U+FF9F) -> full-width (U+3001-U+30FC), joining a following ﾞ/ﾟ into
// the voiced / semi-voiced letter where one exists (ｶﾞ -> ガ, ﾊﾟ -> パ, ｳﾞ -> ヴ); a mark that
// cannot be joined becomes the spacing ゛/゜. Everything else is copied unchanged.
std::string HalfwidthToFullwidthKana(std::string_view utf8);

// Full-width digits ０-９ (U+FF10-U+FF19) -> ASCII 0-9; everything else unchanged.
std::string FullwidthDigitsToAscii(std::string_view utf8);

// Full-width ASCII forms (U+FF01-U+FF5E) -> ASCII 0x21-0x7E and the ideographic space U+3000 ->
// ' '; everything else unchanged.
std::string FullwidthToAscii(std::string_view utf8);

// Matching key (kakehashi rule, digest §8): detached spacing (han)dakuten ゛゜ after a kana are
// joined (ス゛ -> ズ), then NFKC, then every dash-like character (U+2010-U+2015, U+2212, U+30FC
// after a digit, U+FF0D, U+FE63, U+2043) folds to '-', wave dashes 〜 ～ fold to '~', runs of
// white space collapse to one ' ', and the result is trimmed.
std::string NormalizeForMatching(std::string_view utf8);

}  // namespace kakehashi::common
