// ReduceMean: axes is an attribute before opset 18 and an optional input from 18. Integer means
// truncate toward zero; an empty reduction is NaN (0/0) for floats and 0 for integers.
#include "kiln/ops/reduce/reduce.h"

namespace kiln {
namespace {
struct MeanFamily {
  template <typename T>
  struct Op {
    using Acc = SumAcc<T>;
    Acc init() const { return Acc(0); }
    Acc step(Acc a, T x) const { return a + Acc(x); }
    Acc merge(Acc a, Acc b) const { return a + b; }
    T done(Acc a, int64_t n) const {
      if constexpr (std::is_floating_point_v<T>) return T(a / Acc(n));
      else return n == 0 ? T(0) : T(a / n);
    }
  };
};
const OpRegistration kReduceMean{"ReduceMean", make_kernel<Reduce<MeanFamily, ReduceTypes, 18>>};
}  // namespace
}  // namespace kiln
