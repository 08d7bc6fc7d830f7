# Third-party dependencies: Debian 12 packages only (tools/setup.sh installs them).
find_package(Boost 1.81 REQUIRED CONFIG)          # libboost1.81-dev: System (result), Asio, Beast
find_package(Threads REQUIRED)
find_package(ICU 72 REQUIRED COMPONENTS uc i18n)  # libicu-dev: charset conversion, NFKC
find_package(SQLite3 REQUIRED)                    # libsqlite3-dev
find_package(RapidJSON REQUIRED CONFIG)           # rapidjson-dev (private to fhir/src)
find_package(pugixml QUIET CONFIG)                # libpugixml-dev (vendor XML adapter)
if(KAKEHASHI_WITH_POSTGRES)
  find_package(PostgreSQL REQUIRED)               # libpq-dev
endif()
find_package(OpenSSL REQUIRED)
if(KAKEHASHI_BUILD_TESTS)
  find_package(Catch2 2 REQUIRED)                 # catch2 (v2.13)
endif()

# RapidJSON's CMake config only sets variables; wrap it in a target.
if(NOT TARGET kakehashi_rapidjson)
  add_library(kakehashi_rapidjson INTERFACE)
  target_include_directories(kakehashi_rapidjson SYSTEM INTERFACE ${RapidJSON_INCLUDE_DIRS} ${RAPIDJSON_INCLUDE_DIRS})
  target_compile_definitions(kakehashi_rapidjson INTERFACE RAPIDJSON_HAS_STDSTRING=1)
endif()
