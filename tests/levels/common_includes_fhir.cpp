// Must NOT compile with only common's include directories: common is level 0 and may not see
// fhir (level 1). tests/levels/CMakeLists.txt expects this compile to fail.
#include "kakehashi/common/issue.hpp"
#include "kakehashi/fhir/node.hpp"

int main() {
  return 0;
}
