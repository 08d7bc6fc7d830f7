// Must NOT compile with only terminology's include directories: mapping (level 2) uses terminology,
// never the other way round. tests/levels/CMakeLists.txt expects this compile to fail.
#include "kakehashi/mapping/coding_binder.hpp"
#include "kakehashi/terminology/store.hpp"

int main() {
  return 0;
}
