// Same cut rule as Parse(): a message starts at a line beginning with "MSH" plus a non-alphanumeric
// byte; lines end at CR, LF, 0x0B, 0x1C. CR/LF never occur inside a character of the supported
// charsets and ISO-2022-JP resets at line ends, so no decoding is needed to cut.
#include "kakehashi/adapters/hl7v2/stream_splitter.hpp"

namespace kakehashi::adapters::hl7v2 {
namespace {

constexpr bool IsBreak(char c) {
  return c == '\r' || c == '\n' || c == '\x0B' || c == '\x1C';
}
constexpr bool IsAlnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// Line ends in `s` counted like Parse() does (CRLF once).
std::int64_t CountLines(std::string_view s) {
  std::int64_t n = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\n' || (s[i] == '\r' && (i + 1 >= s.size() || s[i + 1] != '\n'))) ++n;
  }
  return n;
}

}  // namespace

void StreamSplitter::Put(std::string_view bytes) {
  buffer_.append(bytes);
  Scan(false);
}

void StreamSplitter::Finish() {
  finished_ = true;
  Scan(true);
  if (!buffer_.empty()) Emit(buffer_.size());
}

std::optional<StreamSplitter::Piece> StreamSplitter::Next() {
  if (ready_.empty()) return std::nullopt;
  Piece p = std::move(ready_.front());
  ready_.pop_front();
  return p;
}

void StreamSplitter::Emit(std::size_t end) {
  Piece p;
  p.bytes = buffer_.substr(0, end);
  p.offset = buffer_offset_;
  p.first_line = line_;
  p.message_index = messages_;
  messages_ += msh_in_buffer_;
  // Cuts are made at line starts, i.e. after a whole CRLF, so counting per piece is exact.
  line_ += CountLines(p.bytes);
  buffer_offset_ += end;
  buffer_.erase(0, end);
  scan_ -= end;
  msh_in_buffer_ = 0;
  ready_.push_back(std::move(p));
}

void StreamSplitter::Scan(bool at_end) {
  while (true) {
    if (in_line_) {  // the current line is classified: skip to its end
      while (scan_ < buffer_.size() && !IsBreak(buffer_[scan_])) ++scan_;
      if (scan_ >= buffer_.size()) return;
      ++scan_;
      in_line_ = false;
    }
    if (scan_ >= buffer_.size()) return;
    // At a line start: 4 bytes (or a line end, or the end of input) decide whether it is MSH.
    std::size_t avail = 0;
    while (avail < 4 && scan_ + avail < buffer_.size() && !IsBreak(buffer_[scan_ + avail])) {
      ++avail;
    }
    if (avail < 4 && scan_ + avail >= buffer_.size() && !at_end) return;  // wait for more
    const std::string_view head(buffer_.data() + scan_, avail);
    const bool msh =
        head.size() >= 3 && head.substr(0, 3) == "MSH" && (head.size() == 3 || !IsAlnum(head[3]));
    if (msh) {
      // Text before the first MSH stays with the first message (as in one-shot Parse()).
      if (msh_in_buffer_ > 0) Emit(scan_);
      ++msh_in_buffer_;
    }
    in_line_ = true;
  }
}

}  // namespace kakehashi::adapters::hl7v2
