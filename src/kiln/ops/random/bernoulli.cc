// Bernoulli (opset 15): y[i] = 1 with probability x[i] (float or double in [0, 1]), else 0,
// as `dtype` (default: x's type; any numeric type or bool).
#include "kiln/ops/random/random_common.h"

namespace kiln {
namespace {

using BernoulliOut = TypeList<float, double, int32_t, int64_t, int8_t, int16_t, uint8_t, uint16_t, uint32_t, uint64_t,
                              bool, Float16, BFloat16>;

class Bernoulli : public Kernel {
 public:
  explicit Bernoulli(const ir::Node& node)
      : keys_(node), has_dtype_(node.has_attr("dtype")), dtype_(random::read_dtype(node, DType::Undefined)) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    dispatch(random::RandomTypes{}, x.dtype(), "Bernoulli input", []<typename T>() {});
    out_ = has_dtype_ ? dtype_ : x.dtype();
    dispatch(BernoulliOut{}, out_, "Bernoulli output", []<typename T>() {});
    ctx.set_output(0, out_, x.shape());
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    const uint64_t key = keys_.next();
    dispatch(random::RandomTypes{}, x.dtype(), "Bernoulli", [&]<typename TI>() {
      const TI* p = x.data<TI>();
      for (int64_t i = 0; i < x.size(); ++i) {
        const double v = double(to_compute(p[i]));
        if (!(v >= 0 && v <= 1))
          fail(ErrorCode::InvalidArgument, "probabilities must be in [0, 1], got ", v, " at index ", i);
      }
      dispatch(BernoulliOut{}, out_, "Bernoulli", [&]<typename TO>() {
        TO* po = y.data<TO>();
        parallel_for(x.size(), 16384, [&](int64_t s, int64_t e) {
          for (int64_t i = s; i < e; ++i) {
            const bool one = random::uniform01(key, uint64_t(i)) < double(to_compute(p[i]));
            if constexpr (std::is_same_v<TO, bool>) po[i] = one;
            else po[i] = from_compute<TO>(compute_t<TO>(one ? 1 : 0));
          }
        });
      });
    });
  }

 private:
  random::KeySource keys_;
  bool has_dtype_;
  DType dtype_, out_ = DType::Undefined;
};

const OpRegistration kBernoulli{"", "Bernoulli", 15, make_kernel<Bernoulli>};

}  // namespace
}  // namespace kiln
