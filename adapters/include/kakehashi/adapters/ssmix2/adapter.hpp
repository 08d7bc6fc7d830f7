// The "ssmix2" adapter: an SS-MIX2 standardized storage root, or one file inside a store, as a
// stream of generic Records (adapter.hpp). It walks the tree with StorageReader (sorted,
// streaming, condition flags applied) and yields, per storage record, the HL7 v2 messages of the
// record's deciding file (the `_1` file, or the latest `_0` file of a deleted record), parsed by
// the hl7v2 adapter. Superseded (`_2`) files are not yielded: snapshot differences (PPR-01) need
// both versions and are computed by mapping::Converter, which reads StorageRecords directly.
//
// Records are Ssmix2Records (Kind() "ssmix2"): GetText() reads the message by HL7 v2 path
// (hl7v2/path.hpp) and three storage paths:
//   "SSMIX2.action"     "upsert" or "delete" (condition flags, storage_reader.hpp)
//   "SSMIX2.data_type"  the SS-MIX2 data type of the file name ("OMP-01")
//   "SSMIX2.file"       the root-relative path (contains the patient ID)
// Where() names the file as "ssmix2:<root-relative path>" (docs/decisions/0003).
//
// Score(): 60 for any directory (the caller points at a root; no I/O is allowed to check it), 95
// for a file whose name has the 7 SS-MIX2 fields (above hl7v2's 90: the flags of its siblings
// matter), 0 otherwise.
// Issues: those of StorageReader and the hl7v2 parser. errc: kNotFound, kIoError.
#pragma once

#include "kakehashi/adapters/adapter.hpp"

#include <memory>

namespace kakehashi::adapters::ssmix2 {

std::unique_ptr<Adapter> MakeAdapter();

}  // namespace kakehashi::adapters::ssmix2
