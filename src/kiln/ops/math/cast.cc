// Cast (opset 6+; strings from 9, bfloat16 from 13): converts to the element type named by
// the `to` attribute. The conversions themselves (cast_elements) also serve CastLike.
#include "kiln/ops/math/cast.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {

using CastTypes = TypeList<float, double, int32_t, int64_t, int8_t, int16_t, uint8_t, uint16_t, uint32_t, uint64_t,
                           bool, Float16, BFloat16>;

template <typename D, typename S>
D convert(const S& v) {
  const auto c = to_compute(v);
  using C = std::remove_cvref_t<decltype(c)>;
  if constexpr (std::is_same_v<D, bool>) {
    return c != C(0);
  } else if constexpr (is_half_v<D>) {
    return from_compute<D>(float(c));
  } else if constexpr (std::is_integral_v<D> && std::is_floating_point_v<C>) {
    // Narrow integers through int32 and uint32 through int64, as numpy does on x86, so that
    // in-range negative values wrap instead of hitting an undefined conversion.
    if constexpr (sizeof(D) < 4) return D(int32_t(c));
    else if constexpr (std::is_same_v<D, uint32_t>) return D(int64_t(c));
    else return D(c);
  } else {
    return D(c);
  }
}

template <typename D, typename S>
void convert_numbers(const S* src, D* dst, int64_t n) {
#if defined(__AVX512F__)
  // float <-> float16 dominate mixed-precision models: 16 lanes per instruction.
  if constexpr (std::is_same_v<S, float> && std::is_same_v<D, Float16>) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                          _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    for (; i < n; ++i) dst[i] = convert<D>(src[i]);
    return;
  } else if constexpr (std::is_same_v<S, Float16> && std::is_same_v<D, float>) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
    for (; i < n; ++i) dst[i] = convert<D>(src[i]);
    return;
  }
#endif
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) dst[i] = convert<D>(src[i]);
}

// --- numbers to strings -------------------------------------------------------------------

// A finite nonzero value as decimal digits d1 d2 ... and the exponent of d1 (value =
// d1.d2... x 10^exp10), with the fewest digits that read back to the same value of type T.
struct Decimal {
  std::string digits;
  int exp10 = 0;
};

// Splits a "-d.ddde+XX" string (printf %e or to_chars scientific) into a Decimal.
Decimal split_scientific(const char* s) {
  Decimal d;
  if (*s == '-') ++s;
  for (; *s && *s != 'e'; ++s)
    if (*s != '.') d.digits += *s;
  d.exp10 = *s == 'e' ? std::atoi(s + 1) : 0;
  while (d.digits.size() > 1 && d.digits.back() == '0') d.digits.pop_back();
  return d;
}

template <typename T>
Decimal shortest_digits(T v) {
  char buf[64];
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    auto r = std::to_chars(buf, buf + sizeof(buf) - 1, v, std::chars_format::scientific);
    *r.ptr = 0;
    return split_scientific(buf);
  } else {
    // No to_chars for 16-bit floats: try 1, 2, ... significant digits until one reads back.
    const float f = to_compute(v);
    for (int p = 1;; ++p) {
      std::snprintf(buf, sizeof(buf), "%.*e", p - 1, double(f));
      if (from_compute<T>(std::strtof(buf, nullptr)).bits == v.bits || p >= 9) return split_scientific(buf);
    }
  }
}

// numpy's str() of a float scalar: positional for 1e-4 <= |v| < 1e16 (always with a fraction,
// "1.0"), scientific otherwise ("1e-05", "1.5e+16").
template <typename T>
std::string float_to_string(T v) {
  const double x = double(to_compute(v));
  if (std::isnan(x)) return "NaN";
  if (std::isinf(x)) return x > 0 ? "INF" : "-INF";
  std::string out = std::signbit(x) ? "-" : "";
  const double ax = std::fabs(x);
  if (ax == 0) return out + "0.0";
  const Decimal d = shortest_digits(v);
  const int nd = int(d.digits.size());
  if (ax >= 1e-4 && ax < 1e16) {
    if (d.exp10 >= 0) {
      const int int_digits = d.exp10 + 1;
      out += d.digits.substr(0, size_t(std::min(nd, int_digits)));
      if (nd < int_digits) out.append(size_t(int_digits - nd), '0');
      out += '.';
      out += nd > int_digits ? d.digits.substr(size_t(int_digits)) : "0";
    } else {
      out += "0.";
      out.append(size_t(-d.exp10 - 1), '0');
      out += d.digits;
    }
    return out;
  }
  out += d.digits[0];
  if (nd > 1) out += "." + d.digits.substr(1);
  char e[16];
  std::snprintf(e, sizeof(e), "e%c%02d", d.exp10 < 0 ? '-' : '+', std::abs(d.exp10));
  return out + e;
}

template <typename S>
std::string to_string_element(const S& v) {
  if constexpr (std::is_same_v<S, bool>) return v ? "True" : "False";
  else if constexpr (std::is_integral_v<S>) return std::to_string(v);
  else return float_to_string(v);
}

// --- strings to numbers -------------------------------------------------------------------

std::string trimmed(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

[[noreturn]] void bad_string(const std::string& s, DType to, const char* why) {
  fail(ErrorCode::InvalidArgument, "cannot cast string '", s, "' to ", dtype_name(to), ": ", why);
}

// strtod/strtof also read "inf", "+INF", "infinity" and "nan" in any case.
template <typename F>
F parse_float(const std::string& s, DType to) {
  const std::string t = trimmed(s);
  char* end = nullptr;
  F v;
  if constexpr (std::is_same_v<F, float>) v = std::strtof(t.c_str(), &end);
  else v = std::strtod(t.c_str(), &end);
  if (t.empty() || end != t.c_str() + t.size()) bad_string(s, to, "not a number");
  return v;
}

template <typename D>
D parse_element(const std::string& s) {
  constexpr DType to = dtype_of<D>();
  if constexpr (std::is_same_v<D, float> || std::is_same_v<D, double>) {
    return parse_float<D>(s, to);
  } else if constexpr (is_half_v<D>) {
    return from_compute<D>(parse_float<float>(s, to));
  } else if constexpr (std::is_same_v<D, bool>) {
    std::string t = trimmed(s);
    for (char& c : t) c = char(std::tolower(static_cast<unsigned char>(c)));
    if (t == "true") return true;
    if (t == "false") return false;
    return parse_float<double>(s, to) != 0;
  } else {
    const std::string t = trimmed(s);
    // Integers parse exactly; anything else ("100.5", "1e3") as a float truncated toward zero.
    using Wide = std::conditional_t<std::is_signed_v<D>, int64_t, uint64_t>;
    Wide w = 0;
    const char* b = t.c_str();
    if (!t.empty() && t[0] == '+') ++b;
    auto r = std::from_chars(b, t.c_str() + t.size(), w);
    if (r.ec == std::errc::result_out_of_range) bad_string(s, to, "out of range");
    if (r.ec != std::errc() || r.ptr != t.c_str() + t.size()) {
      const double f = std::trunc(parse_float<double>(s, to));
      const double limit = std::ldexp(1.0, std::numeric_limits<D>::digits);  // 2^63 for int64
      if (!(f >= (std::is_signed_v<D> ? -limit : 0.0) && f < limit)) bad_string(s, to, "out of range");
      return D(f);
    }
    if (w < Wide(std::numeric_limits<D>::lowest()) || w > Wide(std::numeric_limits<D>::max()))
      bad_string(s, to, "out of range");
    return D(w);
  }
}

}  // namespace

bool cast_supported(DType t) {
  switch (t) {
    case DType::Float32: case DType::Float64: case DType::Float16: case DType::BFloat16:
    case DType::Int8: case DType::Int16: case DType::Int32: case DType::Int64:
    case DType::UInt8: case DType::UInt16: case DType::UInt32: case DType::UInt64:
    case DType::Bool: case DType::String:
      return true;
    default:
      return false;
  }
}

void cast_elements(const Tensor& src, Tensor& dst) {
  if (src.dtype() == dst.dtype()) return copy_elements(src, dst);
  const int64_t n = src.size();
  if (src.dtype() == DType::String) {
    const std::string* ps = src.data<std::string>();
    dispatch(CastTypes{}, dst.dtype(), "Cast", [&]<typename D>() {
      D* pd = dst.data<D>();
      for (int64_t i = 0; i < n; ++i) pd[i] = parse_element<D>(ps[i]);
    });
    return;
  }
  if (dst.dtype() == DType::String) {
    std::string* pd = dst.data<std::string>();
    dispatch(CastTypes{}, src.dtype(), "Cast", [&]<typename S>() {
      const S* ps = src.data<S>();
      parallel_for(n, 1024, [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) pd[i] = to_string_element(ps[i]);
      });
    });
    return;
  }
  dispatch(CastTypes{}, src.dtype(), "Cast", [&]<typename S>() {
    dispatch(CastTypes{}, dst.dtype(), "Cast", [&]<typename D>() {
      const S* ps = src.data<S>();
      D* pd = dst.data<D>();
      parallel_for(n, 32768, [&](int64_t s, int64_t e) { convert_numbers(ps + s, pd + s, e - s); });
    });
  });
}

namespace {

class Cast : public Kernel {
 public:
  explicit Cast(const ir::Node& node) {
    if (!node.has_attr("to")) fail(ErrorCode::InvalidGraph, "the 'to' attribute is missing");
    const int64_t to = node.attr_int("to", 0);
    if (to < 0 || to > std::numeric_limits<int32_t>::max() || !dtype_valid(int32_t(to)) || !cast_supported(DType(to)))
      fail(ErrorCode::NotImplemented, "casting to element type ", to, " is not supported");
    to_ = DType(to);
  }
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (!cast_supported(x.dtype()))
      fail(ErrorCode::NotImplemented, "casting from ", dtype_name(x.dtype()), " is not supported");
    ctx.set_output(0, to_, x.shape());
  }
  void compute(OpContext& ctx) override { cast_elements(ctx.input(0), ctx.output(0)); }

 private:
  DType to_;
};

const OpRegistration kCast{"Cast", make_kernel<Cast>};

}  // namespace
}  // namespace kiln
