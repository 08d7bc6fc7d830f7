// Building blocks of the typed R4 classes (generated headers kakehashi/fhir/r4/<type>.hpp):
// primitive wrappers that keep a value *and* the element's id/extensions (FHIR JSON "_x"), and
// Box<T>, a copyable nullable holder for single complex elements and choice alternatives (it
// allows the recursive types of FHIR: Identifier.assigner is a Reference whose identifier is an
// Identifier).
//
// Lexical forms are kept: dates and times are strings with their precision ("1980-04" stays
// "1980-04"), decimals keep their text ("1.50"). Value formats are checked by conformance/, not
// here.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace kakehashi::fhir::r4 {

class Extension;

// A nullable, deep-copying holder. `box = T{...}` or `box.Emplace()` sets it; `box->member` reads
// it.
template <class T>
class Box {
 public:
  Box() = default;
  Box(const T& value) : p_(std::make_unique<T>(value)) {}        // NOLINT: implicit by design
  Box(T&& value) : p_(std::make_unique<T>(std::move(value))) {}  // NOLINT: implicit by design
  Box(const Box& other) : p_(other.p_ ? std::make_unique<T>(*other.p_) : nullptr) {}
  Box(Box&&) noexcept = default;
  Box& operator=(const Box& other) {
    if (this != &other) p_ = other.p_ ? std::make_unique<T>(*other.p_) : nullptr;
    return *this;
  }
  Box& operator=(Box&&) noexcept = default;
  ~Box() = default;

  bool HasValue() const { return p_ != nullptr; }
  explicit operator bool() const { return p_ != nullptr; }
  T& operator*() { return *p_; }
  const T& operator*() const { return *p_; }
  T* operator->() { return p_.get(); }
  const T* operator->() const { return p_.get(); }
  T* Get() { return p_.get(); }
  const T* Get() const { return p_.get(); }
  // Creates a default T when empty; returns it.
  T& Emplace() {
    if (!p_) p_ = std::make_unique<T>();
    return *p_;
  }
  void Reset() { p_.reset(); }

 private:
  std::unique_ptr<T> p_;
};

// id and extensions of a primitive element ("_birthDate": {"id": …, "extension": […]}).
class PrimitiveBase {
 public:
  PrimitiveBase();
  ~PrimitiveBase();
  PrimitiveBase(const PrimitiveBase&);
  PrimitiveBase(PrimitiveBase&&) noexcept;
  PrimitiveBase& operator=(const PrimitiveBase&);
  PrimitiveBase& operator=(PrimitiveBase&&) noexcept;

  std::string id;
  std::vector<Extension> extension;
  bool HasExtras() const { return !id.empty() || !extension.empty(); }
};

// Primitives whose JSON form is a string (string, code, uri, date, dateTime, …).
class StringValue : public PrimitiveBase {
 public:
  StringValue() = default;
  StringValue(std::string v) : value(std::move(v)) {}    // NOLINT: implicit by design
  StringValue(const char* v) : value(std::string(v)) {}  // NOLINT: implicit by design
  std::optional<std::string> value;
  bool IsEmpty() const { return !value && !HasExtras(); }
};

class BooleanValue : public PrimitiveBase {
 public:
  BooleanValue() = default;
  BooleanValue(bool v) : value(v) {}  // NOLINT: implicit by design
  std::optional<bool> value;
  bool IsEmpty() const { return !value && !HasExtras(); }
};

// integer, positiveInt, unsignedInt (32-bit in FHIR; stored wider).
class IntegerValue : public PrimitiveBase {
 public:
  IntegerValue() = default;
  IntegerValue(std::int64_t v) : value(v) {}  // NOLINT: implicit by design
  std::optional<std::int64_t> value;
  bool IsEmpty() const { return !value && !HasExtras(); }
};

// decimal: the JSON number's text, so precision survives ("1.50").
class DecimalValue : public PrimitiveBase {
 public:
  DecimalValue() = default;
  DecimalValue(std::string text) : value(std::move(text)) {}    // NOLINT: implicit by design
  DecimalValue(const char* text) : value(std::string(text)) {}  // NOLINT: implicit by design
  std::optional<std::string> value;
  bool IsEmpty() const { return !value && !HasExtras(); }
};

// One class per FHIR primitive type so signatures say what they hold.
#define KAKEHASHI_FHIR_PRIMITIVE(Name, Base) \
  class Name : public Base {                 \
   public:                                   \
    using Base::Base;                        \
  };
KAKEHASHI_FHIR_PRIMITIVE(String, StringValue)
KAKEHASHI_FHIR_PRIMITIVE(Code, StringValue)
KAKEHASHI_FHIR_PRIMITIVE(Id, StringValue)
KAKEHASHI_FHIR_PRIMITIVE(Uri, StringValue)
KAKEHASHI_FHIR_PRIMITIVE(Url, StringValue)
KAKEHASHI_FHIR_PRIMITIVE(Canonical, StringValue)
KAKEHASHI_FHIR_PRIMITIVE(Oid, StringValue)
KAKEHASHI_FHIR_PRIMITIVE(Uuid, StringValue)
KAKEHASHI_FHIR_PRIMITIVE(Markdown, StringValue)
KAKEHASHI_FHIR_PRIMITIVE(Base64Binary, StringValue)
KAKEHASHI_FHIR_PRIMITIVE(Date, StringValue)
KAKEHASHI_FHIR_PRIMITIVE(DateTime, StringValue)
KAKEHASHI_FHIR_PRIMITIVE(Instant, StringValue)
KAKEHASHI_FHIR_PRIMITIVE(Time, StringValue)
KAKEHASHI_FHIR_PRIMITIVE(Xhtml, StringValue)
KAKEHASHI_FHIR_PRIMITIVE(Boolean, BooleanValue)
KAKEHASHI_FHIR_PRIMITIVE(Integer, IntegerValue)
KAKEHASHI_FHIR_PRIMITIVE(PositiveInt, IntegerValue)
KAKEHASHI_FHIR_PRIMITIVE(UnsignedInt, IntegerValue)
KAKEHASHI_FHIR_PRIMITIVE(Decimal, DecimalValue)
#undef KAKEHASHI_FHIR_PRIMITIVE

}  // namespace kakehashi::fhir::r4
