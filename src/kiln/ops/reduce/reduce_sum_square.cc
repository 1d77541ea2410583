// ReduceSumSquare: sum of squares; axes is an attribute before opset 18 and an optional input
// from 18. An empty reduction gives 0.
#include "kiln/ops/reduce/reduce.h"

namespace kiln {
namespace {
struct SumSquareFamily {
  template <typename T>
  struct Op {
    using Acc = SumAcc<T>;
    Acc init() const { return Acc(0); }
    Acc step(Acc a, T x) const { return a + Acc(x) * Acc(x); }
    Acc merge(Acc a, Acc b) const { return a + b; }
    T done(Acc a, int64_t) const { return T(a); }
  };
};
const OpRegistration kReduceSumSquare{"ReduceSumSquare", make_kernel<Reduce<SumSquareFamily, ReduceTypes, 18>>};
}  // namespace
}  // namespace kiln
