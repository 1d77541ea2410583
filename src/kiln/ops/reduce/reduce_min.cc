// ReduceMin: axes is an attribute before opset 18 and an optional input from 18. NaN wins, as in
// numpy; an empty reduction gives +inf (floats) or the type's largest value.
#include "kiln/ops/reduce/reduce.h"

namespace kiln {
namespace {
struct MinFamily {
  template <typename T>
  struct Op {
    using Acc = T;
    T init() const {
      if constexpr (std::numeric_limits<T>::has_infinity) return std::numeric_limits<T>::infinity();
      else return std::numeric_limits<T>::max();
    }
    T step(T a, T x) const { return (a != a || a <= x) ? a : x; }
    T merge(T a, T b) const { return step(a, b); }
    T done(T a, int64_t) const { return a; }
  };
};
const OpRegistration kReduceMin{
    "ReduceMin", make_kernel<Reduce<MinFamily, TypeList<float, double, int32_t, int64_t, uint8_t, int8_t>, 18>>};
}  // namespace
}  // namespace kiln
