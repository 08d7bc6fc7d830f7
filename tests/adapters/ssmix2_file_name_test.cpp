#include "kakehashi/adapters/ssmix2/file_name.hpp"

#include <catch2/catch.hpp>

using namespace kakehashi::adapters::ssmix2;

TEST_CASE("ssmix2 file name: the 7 fields of a dated order file", "[ssmix2]") {
  auto f = ParseFileName("0012345678_20240401_OMP-01_000000000012345_20240401101600000_01_1");
  REQUIRE(f);
  CHECK(f->patient_id == "0012345678");
  CHECK(f->care_date == "20240401");
  CHECK(f->data_type == "OMP-01");
  CHECK(f->order_no == "000000000012345");
  CHECK(f->stored_at == "20240401101600000");
  CHECK(f->department == "01");
  CHECK(f->flag == Flag::kCurrent);
  CHECK(f->Key() == "0012345678_20240401_OMP-01_000000000012345");
  CHECK(f->ToString() == "0012345678_20240401_OMP-01_000000000012345_20240401101600000_01_1");
}

TEST_CASE("ssmix2 file name: undated, no department, flags 0 and 2", "[ssmix2]") {
  auto f = ParseFileName("0012345678_-_ADT-00_999999999999999_20240301100000000_-_2");
  REQUIRE(f);
  CHECK(f->care_date == "-");
  CHECK(f->department == "-");
  CHECK(f->flag == Flag::kSuperseded);
  auto d = ParseFileName("0012345678_20240401_OMP-01_000000000012346_20240401102000000_01_0");
  REQUIRE(d);
  CHECK(d->flag == Flag::kDeleted);
}

TEST_CASE("ssmix2 file name: rejects malformed names with a reason", "[ssmix2]") {
  FileNameError e{};
  CHECK_FALSE(ParseFileName("0012345678_-_ADT-00_999_20240301100000000_-", &e));
  CHECK(e == FileNameError::kFieldCount);
  CHECK_FALSE(ParseFileName("a_-_ADT-00_999_20240301100000000_-_1_x", &e));
  CHECK(e == FileNameError::kFieldCount);
  CHECK_FALSE(ParseFileName("0012345678_2024041_ADT-00_999_20240301100000000_-_1", &e));
  CHECK(e == FileNameError::kCareDate);
  CHECK_FALSE(ParseFileName("0012345678_-_ADT-00_999_2024030110000000_-_1", &e));
  CHECK(e == FileNameError::kStoredAt);
  CHECK_FALSE(ParseFileName("0012345678_-_ADT-00_999_20240301100000000_-_3", &e));
  CHECK(e == FileNameError::kFlag);
  CHECK_FALSE(ParseFileName("0012345678_-__999_20240301100000000_-_1", &e));
  CHECK(e == FileNameError::kEmptyField);
  CHECK_FALSE(ParseFileName("", &e));
  CHECK(e == FileNameError::kFieldCount);
  for (auto err : {FileNameError::kFieldCount, FileNameError::kEmptyField, FileNameError::kCareDate,
                   FileNameError::kStoredAt, FileNameError::kFlag, FileNameError::kPatientId}) {
    CHECK_FALSE(Describe(err).empty());
  }
}
