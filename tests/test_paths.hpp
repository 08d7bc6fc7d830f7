// Where a test binary finds the source tree and its build tree. Force-included into every test
// translation unit by kakehashi_add_test (cmake/KakehashiModule.cmake). The paths live in one
// generated file per build tree (tests/test_paths.cpp.in), not in each unit's compile flags: a
// flag that spells the tree's absolute path makes every test unit's compile command differ
// between two checkouts, so none of them could be a compiler-cache hit in a second worktree.
#pragma once

namespace kakehashi::testing {

const char* SourceDir();  // the checkout the build was configured from
const char* BinaryDir();  // the build tree

}  // namespace kakehashi::testing

#define KAKEHASHI_SOURCE_DIR (::kakehashi::testing::SourceDir())
#define KAKEHASHI_BINARY_DIR (::kakehashi::testing::BinaryDir())
