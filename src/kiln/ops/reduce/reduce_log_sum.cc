// ReduceLogSum: log of the sum; axes is an attribute before opset 18 and an optional input from
// 18. An empty reduction gives -inf; integer results truncate (and saturate).
#include "kiln/ops/reduce/reduce.h"

namespace kiln {
namespace {
struct LogSumFamily {
  template <typename T>
  struct Op {
    using Acc = SumAcc<T>;
    Acc init() const { return Acc(0); }
    Acc step(Acc a, T x) const { return a + Acc(x); }
    Acc merge(Acc a, Acc b) const { return a + b; }
    T done(Acc a, int64_t) const {
      if constexpr (std::is_floating_point_v<T>) return std::log(a);
      else return saturate_cast<T>(std::log(double(a)));
    }
  };
};
const OpRegistration kReduceLogSum{"ReduceLogSum", make_kernel<Reduce<LogSumFamily, ReduceTypes, 18>>};
}  // namespace
}  // namespace kiln
