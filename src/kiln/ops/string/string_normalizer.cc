// StringNormalizer (opset 10): drops stopwords from a [C] or [1, C] string tensor and changes
// case. Case mapping is Unicode-aware (UTF-8 decoded, mapped by the C.UTF-8 locale's tables);
// invalid UTF-8 bytes pass through unchanged. When every word is dropped the result is one
// empty string ([1] or [1, 1]), as ONNX specifies.
#include <clocale>
#include <cwctype>
#include <string>
#include <unordered_set>

#include <locale.h>

#include "kiln/exec/kernel.h"

namespace kiln {
namespace {

enum class CaseChange { None, Lower, Upper };

// glibc's C.UTF-8 locale carries the full Unicode simple case tables; without it, only ASCII maps.
locale_t utf8_locale() {
  static locale_t loc = [] {
    locale_t l = newlocale(LC_CTYPE_MASK, "C.UTF-8", locale_t(0));
    return l ? l : newlocale(LC_CTYPE_MASK, "C", locale_t(0));
  }();
  return loc;
}

// Decodes one UTF-8 sequence at s[i]; returns its length, or 0 for an invalid one.
size_t decode_utf8(const std::string& s, size_t i, char32_t& cp) {
  const unsigned char b0 = static_cast<unsigned char>(s[i]);
  size_t len;
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  } else if ((b0 & 0xE0) == 0xC0) {
    len = 2, cp = b0 & 0x1F;
  } else if ((b0 & 0xF0) == 0xE0) {
    len = 3, cp = b0 & 0x0F;
  } else if ((b0 & 0xF8) == 0xF0) {
    len = 4, cp = b0 & 0x07;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const unsigned char b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  return len;
}

void encode_utf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += char(cp);
  } else if (cp < 0x800) {
    out += char(0xC0 | (cp >> 6));
    out += char(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += char(0xE0 | (cp >> 12));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  } else {
    out += char(0xF0 | (cp >> 18));
    out += char(0x80 | ((cp >> 12) & 0x3F));
    out += char(0x80 | ((cp >> 6) & 0x3F));
    out += char(0x80 | (cp & 0x3F));
  }
}

std::string change_case(const std::string& s, CaseChange how) {
  if (how == CaseChange::None) return s;
  std::string out;
  out.reserve(s.size());
  const locale_t loc = utf8_locale();
  for (size_t i = 0; i < s.size();) {
    const unsigned char b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {  // ASCII fast path
      out += char(how == CaseChange::Upper ? (b >= 'a' && b <= 'z' ? b - 32 : b) : (b >= 'A' && b <= 'Z' ? b + 32 : b));
      ++i;
      continue;
    }
    char32_t cp;
    const size_t len = decode_utf8(s, i, cp);
    if (len == 0) {
      out += s[i++];
      continue;
    }
    const wint_t mapped = how == CaseChange::Upper ? towupper_l(wint_t(cp), loc) : towlower_l(wint_t(cp), loc);
    encode_utf8(char32_t(mapped), out);
    i += len;
  }
  return out;
}

class StringNormalizer : public Kernel {
 public:
  explicit StringNormalizer(const ir::Node& node)
      : case_sensitive_(node.attr_int("is_case_sensitive", 0) != 0) {
    const std::string action = node.attr_string("case_change_action", "NONE");
    if (action == "LOWER") action_ = CaseChange::Lower;
    else if (action == "UPPER") action_ = CaseChange::Upper;
    else if (action != "NONE")
      fail(ErrorCode::InvalidGraph, "case_change_action must be LOWER, UPPER or NONE, got '", action, "'");
    for (const std::string& w : node.attr_strings("stopwords"))
      stopwords_.insert(case_sensitive_ ? w : change_case(w, CaseChange::Lower));
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::String)
      fail(ErrorCode::InvalidArgument, "input must be a string tensor, got ", dtype_name(x.dtype()));
    if (!(x.rank() == 1 || (x.rank() == 2 && x.dim(0) == 1)))
      fail(ErrorCode::InvalidArgument, "input must have shape [C] or [1, C], got ", shape_str(x.shape()));
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    std::vector<std::string> kept;
    kept.reserve(size_t(x.size()));
    for (const std::string& w : x.values<std::string>()) {
      if (!stopwords_.empty() && stopwords_.count(case_sensitive_ ? w : change_case(w, CaseChange::Lower))) continue;
      kept.push_back(change_case(w, action_));
    }
    if (kept.empty()) kept.emplace_back();
    Shape shape{int64_t(kept.size())};
    if (x.rank() == 2) shape.insert(shape.begin(), 1);
    Tensor& y = ctx.allocate_output(0, DType::String, shape);
    std::string* py = y.data<std::string>();
    for (size_t i = 0; i < kept.size(); ++i) py[i] = std::move(kept[i]);
  }

 private:
  bool case_sensitive_;
  CaseChange action_ = CaseChange::None;
  std::unordered_set<std::string> stopwords_;
};

const OpRegistration kStringNormalizer{"", "StringNormalizer", 10, make_kernel<StringNormalizer>};

}  // namespace
}  // namespace kiln
