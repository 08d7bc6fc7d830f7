# kakehashi_add_module(NAME name SOURCES ... [DEPS kakehashi::x ...] [PRIVATE_DEPS ...])
#
# Creates kakehashi_<name> with alias kakehashi::<name>. Include directories are per target:
# PUBLIC <module>/include, PRIVATE <module>/src. There are no global include directories, so a
# module that includes a header of a module it does not link fails to compile; this is how the
# module levels of docs/architecture.md are enforced.
function(kakehashi_add_module)
  cmake_parse_arguments(M "" "NAME;DIR" "SOURCES;DEPS;PRIVATE_DEPS" ${ARGN})
  if(NOT M_DIR)
    set(M_DIR ${CMAKE_CURRENT_SOURCE_DIR})
  endif()
  add_library(kakehashi_${M_NAME} STATIC ${M_SOURCES})
  add_library(kakehashi::${M_NAME} ALIAS kakehashi_${M_NAME})
  target_include_directories(kakehashi_${M_NAME}
    PUBLIC $<BUILD_INTERFACE:${M_DIR}/include>
    PRIVATE ${M_DIR}/src)
  target_link_libraries(kakehashi_${M_NAME} PUBLIC ${M_DEPS} PRIVATE ${M_PRIVATE_DEPS} kakehashi_warnings)
endfunction()

# kakehashi_add_test(NAME name SOURCES ... DEPS ... [SHARDS n]): one Catch2 v2 executable per
# module, run by ctest: as one test `name`, or with SHARDS as n tests name_0 .. name_<n-1>
# (kakehashi_add_shards) when running all its cases would take one test over the suite's ~20 s.
function(kakehashi_add_test)
  cmake_parse_arguments(T "" "NAME;SHARDS" "SOURCES;DEPS" ${ARGN})
  # KAKEHASHI_SOURCE_DIR / KAKEHASHI_BINARY_DIR come from tests/test_paths.hpp (force-included)
  # and one generated source, so the other units' compile commands name no absolute path.
  set(paths_cpp ${PROJECT_BINARY_DIR}/tests/test_paths.cpp)
  configure_file(${PROJECT_SOURCE_DIR}/tests/test_paths.cpp.in ${paths_cpp} @ONLY)
  add_executable(${T_NAME} ${T_SOURCES} ${PROJECT_SOURCE_DIR}/tests/catch_main.cpp ${paths_cpp})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} Catch2::Catch2 kakehashi_warnings)
  target_compile_options(${T_NAME} PRIVATE -include ${PROJECT_SOURCE_DIR}/tests/test_paths.hpp)
  if(T_SHARDS)
    # "~[.]": the cases a run without a spec selects (every case not hidden).
    kakehashi_add_shards(NAME ${T_NAME} TARGET ${T_NAME} SPEC "~[.]" COUNT ${T_SHARDS})
  else()
    add_test(NAME ${T_NAME} COMMAND ${T_NAME} --order decl WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  endif()
endfunction()

# kakehashi_add_shards(NAME name TARGET exe SPEC spec COUNT n): ctest tests name_0 .. name_<n-1>
# that together run each test case of `exe` selected by the Catch2 test spec `spec` once
# (tests/catch_shard.sh: round robin in declaration order). Sets KAKEHASHI_SHARDS in the caller
# to the test names (for fixtures and other properties).
function(kakehashi_add_shards)
  cmake_parse_arguments(S "" "NAME;TARGET;SPEC;COUNT" "" ${ARGN})
  math(EXPR last "${S_COUNT} - 1")
  set(names)
  foreach(i RANGE ${last})
    add_test(NAME ${S_NAME}_${i}
      COMMAND bash ${PROJECT_SOURCE_DIR}/tests/catch_shard.sh $<TARGET_FILE:${S_TARGET}>
        "${S_SPEC}" ${i} ${S_COUNT} ${CMAKE_CURRENT_BINARY_DIR}/shards
      WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    list(APPEND names ${S_NAME}_${i})
  endforeach()
  set(KAKEHASHI_SHARDS ${names} PARENT_SCOPE)
endfunction()
