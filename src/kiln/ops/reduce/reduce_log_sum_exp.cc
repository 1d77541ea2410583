// ReduceLogSumExp: log(sum(exp(x))) computed stably as m + log(sum(exp(x - m))) with a running
// maximum m, so large inputs do not overflow. axes is an attribute before opset 18 and an
// optional input from 18; an empty reduction gives -inf.
#include "kiln/ops/reduce/reduce.h"

namespace kiln {
namespace {
struct LogSumExpFamily {
  template <typename T>
  struct Op {
    struct Acc {
      double m = -std::numeric_limits<double>::infinity();  // running maximum
      double s = 0;                                         // sum of exp(x - m)
    };
    Acc init() const { return Acc{}; }
    Acc step(Acc a, T x) const { return merge(a, Acc{double(x), 1.0}); }
    Acc merge(Acc a, Acc b) const {
      if (b.s == 0) return a;
      if (a.s == 0) return b;
      if (std::isnan(a.m) || std::isnan(b.m)) return Acc{std::nan(""), 1.0};
      if (a.m < b.m) std::swap(a, b);
      if (b.m == -std::numeric_limits<double>::infinity()) return a;
      if (a.m == std::numeric_limits<double>::infinity()) return a;
      return Acc{a.m, a.s + b.s * std::exp(b.m - a.m)};
    }
    T done(Acc a, int64_t) const {
      const double r = a.s == 0 ? -std::numeric_limits<double>::infinity() : a.m + std::log(a.s);
      return saturate_cast<T>(r);
    }
  };
};
const OpRegistration kReduceLogSumExp{"ReduceLogSumExp", make_kernel<Reduce<LogSumExpFamily, ReduceTypes, 18>>};
}  // namespace
}  // namespace kiln
