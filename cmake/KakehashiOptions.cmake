option(KAKEHASHI_BUILD_TESTS "Build the Catch2 test executables" ON)
option(KAKEHASHI_BUILD_BENCH "Build the benchmarks under bench/" ON)
option(KAKEHASHI_BUILD_FUZZERS "Build libFuzzer targets (needs clang)" OFF)
option(KAKEHASHI_WARNINGS_AS_ERRORS "Treat compiler warnings as errors" OFF)
option(KAKEHASHI_WITH_POSTGRES "Build the PostgreSQL store backend (libpq)" ON)
set(KAKEHASHI_ADAPTERS "hl7v2;ssmix2" CACHE STRING "Built-in adapters, registered explicitly")

find_program(KAKEHASHI_CCACHE ccache)
if(KAKEHASHI_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${KAKEHASHI_CCACHE})
  set(CMAKE_C_COMPILER_LAUNCHER ${KAKEHASHI_CCACHE})
endif()

# One INTERFACE target with the warning flags, linked by every module.
add_library(kakehashi_warnings INTERFACE)
target_compile_options(kakehashi_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wold-style-cast -Wcast-align
  -Woverloaded-virtual -Wimplicit-fallthrough)
if(KAKEHASHI_WARNINGS_AS_ERRORS)
  target_compile_options(kakehashi_warnings INTERFACE -Werror)
endif()
