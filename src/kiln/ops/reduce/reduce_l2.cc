// ReduceL2: square root of the sum of squares; axes is an attribute before opset 18 and an
// optional input from 18. Integer results truncate; an empty reduction gives 0.
#include "kiln/ops/reduce/reduce.h"

namespace kiln {
namespace {
struct L2Family {
  template <typename T>
  struct Op {
    using Acc = SumAcc<T>;
    Acc init() const { return Acc(0); }
    Acc step(Acc a, T x) const { return a + Acc(x) * Acc(x); }
    Acc merge(Acc a, Acc b) const { return a + b; }
    T done(Acc a, int64_t) const {
      if constexpr (std::is_floating_point_v<T>) return std::sqrt(a);
      else return saturate_cast<T>(std::sqrt(double(a)));
    }
  };
};
const OpRegistration kReduceL2{"ReduceL2", make_kernel<Reduce<L2Family, ReduceTypes, 18>>};
}  // namespace
}  // namespace kiln
