#include "kakehashi/common/jp_text.hpp"

#include <catch2/catch.hpp>

namespace common = kakehashi::common;

TEST_CASE("jp_text: NFKC", "[jp_text]") {
  CHECK(common::NormalizeNfkc("ＡＢＣ１２３") == "ABC123");
  CHECK(common::NormalizeNfkc("ｶﾞｷﾞｸﾞ") == "ガギグ");
  CHECK(common::NormalizeNfkc("①") == "1");
  CHECK(common::NormalizeNfkc("㈱") == "(株)");
  CHECK(common::NormalizeNfkc("㍉") == "ミリ");
  CHECK(common::NormalizeNfkc("山本") == "山本");
}

TEST_CASE("jp_text: half-width kana to full-width", "[jp_text]") {
  CHECK(common::HalfwidthToFullwidthKana("ﾔﾏﾓﾄ ﾏﾘｺ") == "ヤマモト マリコ");
  CHECK(common::HalfwidthToFullwidthKana("ｶﾞﾊﾟｳﾞﾜﾞｦﾞ") == "ガパヴヷヺ");
  CHECK(common::HalfwidthToFullwidthKana("ｱﾞ") == "ア゛");  // no voiced ア: spacing mark
  CHECK(common::HalfwidthToFullwidthKana("ﾊﾟﾋﾟﾌﾟﾍﾟﾎﾟ") == "パピプペポ");
  CHECK(common::HalfwidthToFullwidthKana("ｷｬｯﾁｰ｡｢｣､･") == "キャッチー。「」、・");
  CHECK(common::HalfwidthToFullwidthKana("abc１") == "abc１");
  CHECK(common::HalfwidthToFullwidthKana("ﾃﾞﾄﾞﾂﾞ") == "デドヅ");
}

TEST_CASE("jp_text: full-width digits and ASCII", "[jp_text]") {
  CHECK(common::FullwidthDigitsToAscii("１２３ｱＡ") == "123ｱＡ");
  CHECK(common::FullwidthToAscii("ＡＢＣ－１２３　ｘ") == "ABC-123 x");
  CHECK(common::FullwidthToAscii("山本") == "山本");
  CHECK(common::FullwidthDigitsToAscii("a\xFF"
                                       "b") ==
        "a\uFFFD"
        "b");
}

TEST_CASE("jp_text: matching key", "[jp_text]") {
  CHECK(common::NormalizeForMatching("  東京都　千代田区 丸の内１−１－１‐２ ") ==
        "東京都 千代田区 丸の内1-1-1-2");
  CHECK(common::NormalizeForMatching("ス゛") == "ズ");
  CHECK(common::NormalizeForMatching("ﾔﾏﾓﾄ") == "ヤマモト");
  CHECK(common::NormalizeForMatching("1〜3") == "1~3");
  CHECK(common::NormalizeForMatching("１ー２") == "1-2");
  CHECK(common::NormalizeForMatching("コーヒー") == "コーヒー");
}
