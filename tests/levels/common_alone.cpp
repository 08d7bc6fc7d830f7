// Control for the level tests: the same compile command succeeds when the header belongs to the
// module whose include directories are given, so a failure of the sibling test means "not visible",
// not "broken command".
#include "kakehashi/common/issue.hpp"

int main() {
  return 0;
}
