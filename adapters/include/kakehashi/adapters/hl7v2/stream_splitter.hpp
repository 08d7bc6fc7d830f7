// Push splitter for HL7 v2 byte streams of any size (a large batch file read in chunks, a pipe):
// cuts the stream at every line that starts with "MSH" (the same rule as Parse(), parser.hpp),
// without decoding, so memory stays bounded by the largest message.
//
//   StreamSplitter splitter;
//   while (read chunk) {
//     splitter.Put(chunk);
//     while (auto piece = splitter.Next()) hl7v2::Parse(piece->bytes, piece->Options(base), sink);
//   }
//   splitter.Finish();
//   while (auto piece = splitter.Next()) ...
//
// A piece is one message (from its MSH to the next MSH line), except that text before the first
// MSH travels with the first piece (Parse reports it as hl7v2.msh.missing). Pieces carry their
// byte offset, first input line and message number, so issues from Parse point into the whole
// stream. Splitting a stream anywhere gives the same pieces (tests split at every byte).
// Thread-safety: none; one splitter per stream.
#pragma once

#include "kakehashi/adapters/hl7v2/parser.hpp"

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

namespace kakehashi::adapters::hl7v2 {

class StreamSplitter {
 public:
  struct Piece {
    std::string bytes;
    std::size_t offset = 0;         // of bytes[0] in the stream
    std::int64_t first_line = 1;    // input line of bytes[0]
    std::size_t message_index = 0;  // number of MSH lines before this piece

    // ParseOptions for this piece: `base` with base_offset, first_line and first_message_index set.
    ParseOptions Options(ParseOptions base) const {
      base.base_offset = offset;
      base.first_line = first_line;
      base.first_message_index = message_index;
      return base;
    }
  };

  // Appends bytes to the stream.
  void Put(std::string_view bytes);
  // Marks the end of the stream: the buffered tail becomes the last piece.
  void Finish();
  // The next complete piece, or nullopt when more input (or Finish()) is needed.
  std::optional<Piece> Next();
  // Bytes buffered and not yet returned as pieces.
  std::size_t Buffered() const { return buffer_.size(); }
  bool Finished() const { return finished_; }

 private:
  void Scan(bool at_end);
  void Emit(std::size_t end);

  std::string buffer_;  // stream bytes from buffer_offset_ on
  std::size_t buffer_offset_ = 0;
  std::size_t scan_ = 0;           // scan position (index into buffer_)
  bool in_line_ = false;           // scan_ is inside a line already classified
  std::int64_t line_ = 1;          // input line of buffer_[0]
  std::size_t messages_ = 0;       // MSH lines in pieces emitted so far
  std::size_t msh_in_buffer_ = 0;  // MSH lines seen in buffer_ (0 or 1 before a cut)
  bool finished_ = false;
  std::deque<Piece> ready_;
};

}  // namespace kakehashi::adapters::hl7v2
