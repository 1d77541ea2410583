// ReduceL1: sum of absolute values; axes is an attribute before opset 18 and an optional input
// from 18. An empty reduction gives 0.
#include "kiln/ops/reduce/reduce.h"

namespace kiln {
namespace {
struct L1Family {
  template <typename T>
  struct Op {
    using Acc = SumAcc<T>;
    Acc init() const { return Acc(0); }
    Acc step(Acc a, T x) const { return a + (x < T(0) ? -Acc(x) : Acc(x)); }
    Acc merge(Acc a, Acc b) const { return a + b; }
    T done(Acc a, int64_t) const { return T(a); }
  };
};
const OpRegistration kReduceL1{"ReduceL1", make_kernel<Reduce<L1Family, ReduceTypes, 18>>};
}  // namespace
}  // namespace kiln
