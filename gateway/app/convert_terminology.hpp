// `kakehashi convert --terminology URL --concept-map FILE`: the terminology store the mapping binds
// every Coding to (mapping/coding_binder.hpp; issue #5 "Wire into mapping"). Opened once per run,
// never per message; lookups then hit the store's warm in-process cache.
#pragma once

#include "args.hpp"
#include "kakehashi/common/issue_sink.hpp"
#include "kakehashi/terminology/store.hpp"

#include <memory>
#include <string_view>

namespace kakehashi::app {

// The option names this helper reads (value options of `kakehashi convert`).
inline constexpr const char* kTerminologyOption = "terminology";
inline constexpr const char* kConceptMapOption = "concept-map";

// Help lines for the options above.
inline constexpr const char* kConvertTerminologyHelp =
    "  --terminology URL              terminology database with loaded masters (sqlite:PATH, as\n"
    "                                 written by `kakehashi terminology load`): codings get the\n"
    "                                 master's display and YJ/レセ電 codes a HOT9 coding next to\n"
    "                                 them. Without it, codes of HOT/MEDIS/JLAC10/ICD-10 systems\n"
    "                                 are kept as given (warning mapping.master_not_loaded).\n"
    "                                 Default: $KAKEHASHI_TERMINOLOGY_DB when set\n"
    "  --concept-map FILE.tsv         site ConceptMap (code-table TSV, e.g. local lab code ->\n"
    "                                 JLAC10; repeatable): each translation is added next to the\n"
    "                                 original coding. Loaded into --terminology when given (as\n"
    "                                 `terminology load conceptmap`), else into memory\n";

struct ConversionSettings;

// Opens the store when settings.terminology (--terminology or $KAKEHASHI_TERMINOLOGY_DB) or
// --concept-map is given (else leaves `store` null) and loads every --concept-map file. Returns
// kExitOk, or kExitUsage after a one-line message "kakehashi COMMAND: …" on stderr (unusable
// database, unreadable or malformed ConceptMap). (ConversionSettings::OpenTerminology.)
int OpenConvertTerminology(const ConversionSettings& settings, IssueSink& issues,
                           std::unique_ptr<terminology::TerminologyStore>& store,
                           std::string_view command);

}  // namespace kakehashi::app
