// Control for the terminology level tests: the same compile command succeeds with terminology's own
// header, so a failure of the sibling tests means "not visible", not "broken command".
#include "kakehashi/terminology/store.hpp"

int main() {
  return 0;
}
