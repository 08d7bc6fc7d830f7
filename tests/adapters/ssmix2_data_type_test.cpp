#include "kakehashi/adapters/ssmix2/data_type.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>

using namespace kakehashi::adapters::ssmix2;

TEST_CASE("ssmix2 data types: all 26 of the guideline table, unique", "[ssmix2]") {
  CHECK(DataTypes().size() == 26);
  std::set<std::string> codes;
  for (const auto& t : DataTypes()) codes.emplace(t.code);
  CHECK(codes.size() == 26);
  for (const char* code :
       {"ADT-00", "ADT-01", "ADT-12", "ADT-21", "ADT-22", "ADT-31", "ADT-32", "ADT-41", "ADT-42",
        "ADT-51", "ADT-52", "ADT-61", "PPR-01", "OMD",    "OMP-01", "OMP-02", "OMP-11", "OMP-12",
        "OML-01", "OML-11", "OMG-01", "OMG-02", "OMG-03", "OMG-11", "OMG-12", "OMG-13"}) {
    INFO(code);
    CHECK(FindDataType(code) != nullptr);
  }
  CHECK(FindDataType("ADT-02") == nullptr);
  CHECK(FindDataType("omp-01") == nullptr);
}

TEST_CASE("ssmix2 data types: messages, undated folders and snapshots", "[ssmix2]") {
  CHECK(FindDataType("OML-11")->message == "OUL^R22");
  CHECK(FindDataType("OMP-12")->message == "RAS^O17");
  CHECK(FindDataType("PPR-01")->message == "PPR^ZD1");
  CHECK(FindDataType("ADT-61")->message == "ADT^A60");
  CHECK(FindDataType("ADT-21")->cancel == "ADT^A27");
  for (const char* code : {"ADT-00", "ADT-01", "ADT-61", "PPR-01"}) {
    CHECK(FindDataType(code)->undated);
  }
  CHECK_FALSE(FindDataType("OMP-01")->undated);
  CHECK(FindDataType("PPR-01")->snapshot);
  CHECK(FindDataType("ADT-61")->snapshot);
  CHECK(FindDataType("ADT-00")->snapshot);
  CHECK_FALSE(FindDataType("OML-11")->snapshot);
}
