// ReduceSum: axes is an attribute before opset 13 and an optional input from 13. An empty
// reduction sums to 0.
#include "kiln/ops/reduce/reduce.h"

namespace kiln {
namespace {
struct SumFamily {
  template <typename T>
  struct Op {
    using Acc = SumAcc<T>;
    Acc init() const { return Acc(0); }
    Acc step(Acc a, T x) const { return a + Acc(x); }
    Acc merge(Acc a, Acc b) const { return a + b; }
    T done(Acc a, int64_t) const { return T(a); }
  };
};
const OpRegistration kReduceSum{"ReduceSum", make_kernel<Reduce<SumFamily, ReduceTypes, 13>>};
}  // namespace
}  // namespace kiln
