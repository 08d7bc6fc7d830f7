// Must NOT compile with only terminology's include directories: terminology is level 1 and may not
// see fhir (also level 1; mapping and conformance bring the two together). The mapping layer turns
// terminology's plain Codings into FHIR. tests/levels/CMakeLists.txt expects this compile to fail.
#include "kakehashi/fhir/node.hpp"
#include "kakehashi/terminology/store.hpp"

int main() {
  return 0;
}
