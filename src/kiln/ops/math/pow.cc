// Pow: base ^ exponent with numpy broadcasting. The base may be float, double, float16,
// bfloat16, int32 or int64 and the exponent any numeric type (opset 12+; opset 7 had both of
// one float type). The result has the base's type. Integer powers of integers are exact (wrapping
// on overflow); a negative integer exponent gives trunc(base^exp): 0 unless the base is 1 or -1.
#include <cmath>
#include <limits>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {

template <typename T, typename E>
T int_pow(T base, E exp) {
  if constexpr (std::is_signed_v<E>) {
    if (exp < 0) {
      if (base == T(1)) return T(1);
      if (base == T(-1)) return (exp & 1) ? T(-1) : T(1);
      return T(0);
    }
  }
  using U = std::make_unsigned_t<T>;
  U result = 1, b = U(base);
  for (auto e = std::make_unsigned_t<E>(exp); e != 0; e >>= 1) {
    if (e & 1) result = U(result * b);
    b = U(b * b);
  }
  return T(result);
}

// A double result stored in an integer type: truncated, saturated at the type's range, NaN as 0.
template <typename T>
T saturate_cast(double v) {
  if (std::isnan(v)) return T(0);
  if (v <= double(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
  if (v >= double(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
  return T(v);
}

struct PowFn {
  template <typename A, typename E>
  A operator()(A a, E e) const {
    if constexpr (std::is_integral_v<A>) {
      if constexpr (std::is_integral_v<E>) return int_pow(a, e);
      else return saturate_cast<A>(std::pow(double(a), double(e)));
    } else if constexpr (std::is_same_v<A, float> && std::is_same_v<E, float>) {
      return std::pow(a, e);
    } else {
      return A(std::pow(double(a), double(e)));
    }
  }
};

using BaseTypes = TypeList<float, double, int32_t, int64_t, Float16, BFloat16>;

class Pow : public Kernel {
 public:
  explicit Pow(const ir::Node&) {}
  void prepare(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    dispatch(BaseTypes{}, a.dtype(), "Pow base", []<typename T>() {});
    dispatch(AllNumericTypes{}, b.dtype(), "Pow exponent", []<typename T>() {});
    ctx.set_output(0, a.dtype(), broadcast_shapes({a.shape(), b.shape()}));
  }
  void compute(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    Tensor& out = ctx.output(0);
    dispatch(BaseTypes{}, a.dtype(), "Pow base", [&]<typename A>() {
      dispatch(AllNumericTypes{}, b.dtype(), "Pow exponent", [&]<typename E>() {
        if constexpr (std::is_floating_point_v<A>) {
          if (b.size() == 1 && a.size() == out.size() && small_power<A>(a, double(to_compute(b.data<E>()[0])), out))
            return;
        }
        binary_loop<A, A, E>(a, b, out, PowFn{});
      });
    });
  }

 private:
  // x^2, x^3, x^1 and x^0.5 as multiplications and sqrt: exact where pow is, and vectorized.
  template <typename A>
  static bool small_power(const Tensor& a, double e, Tensor& out) {
    const A* pa = a.data<A>();
    A* po = out.data<A>();
    auto run = [&](auto f) {
      parallel_for(out.size(), 32768, [&](int64_t s, int64_t end) {
#pragma omp simd
        for (int64_t i = s; i < end; ++i) po[i] = f(pa[i]);
      });
      return true;
    };
    if (e == 2) return run([](A x) { return x * x; });
    if (e == 3) return run([](A x) { return x * x * x; });
    if (e == 1) return run([](A x) { return x; });
    // pow(-0, 0.5) is +0 and pow(-inf, 0.5) is +inf, where sqrt gives -0 and NaN.
    if (e == 0.5)
      return run([](A x) { return x == -std::numeric_limits<A>::infinity() ? -x : std::sqrt(x) + A(0); });
    return false;
  }
};

const OpRegistration kPow{"Pow", make_kernel<Pow>};

}  // namespace
}  // namespace kiln
