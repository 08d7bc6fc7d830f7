// RegisterBuiltinAdapters: one explicit line per adapter, compiled in when its name is listed in
// the CMake option KAKEHASHI_ADAPTERS (adapters/CMakeLists.txt defines KAKEHASHI_ADAPTER_<NAME>).
#include "kakehashi/adapters/adapter.hpp"

#if defined(KAKEHASHI_ADAPTER_HL7V2)
#include "kakehashi/adapters/hl7v2/adapter.hpp"
#endif
#if defined(KAKEHASHI_ADAPTER_SSMIX2)
#include "kakehashi/adapters/ssmix2/adapter.hpp"
#endif

namespace kakehashi::adapters {

void RegisterBuiltinAdapters(Registry& registry) {
#if defined(KAKEHASHI_ADAPTER_HL7V2)
  registry.Add(hl7v2::MakeAdapter());
#endif
#if defined(KAKEHASHI_ADAPTER_SSMIX2)
  registry.Add(ssmix2::MakeAdapter());
#endif
  (void)registry;
}

}  // namespace kakehashi::adapters
