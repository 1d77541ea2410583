// kiln::SumToShape (made by the Gradient expansion): G brought to the shape of Like, the rule
// that turns the gradient of a broadcasting op's output into its input's gradient:
// out[j] = the sum of G over the positions of broadcast(G, Like) that read Like[j]. Dimensions
// Like broadcast are summed, dimensions G lacks are repeated; equal shapes pass G through.
#include "kiln/ops/common/broadcast.h"
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {

class SumToShape : public Kernel {
 public:
  explicit SumToShape(const ir::Node&) {}

  void prepare(OpContext& ctx) override {
    const Tensor& g = ctx.input(0);
    const Tensor& like = ctx.input(1);
    dispatch(AllFloatTypes{}, g.dtype(), "SumToShape", []<typename T>() {});
    joint_ = broadcast_shapes({g.shape(), like.shape()});
    same_ = g.shape() == like.shape();
    if (!same_) ctx.set_output(0, g.dtype(), like.shape());
  }

  void compute(OpContext& ctx) override {
    const Tensor& g = ctx.input(0);
    const Tensor& like = ctx.input(1);
    if (same_) {
      ctx.set_output_tensor(0, g);
      return;
    }
    Tensor& out = ctx.output(0);
    const size_t r = joint_.size();
    // Element strides of G and of the output in the joint shape (0 where broadcast).
    auto strides = [&](const Shape& s) {
      std::vector<int64_t> st(r, 0);
      int64_t acc = 1;
      for (size_t k = 0; k < s.size(); ++k) {
        const size_t d = r - 1 - k, sd = s.size() - 1 - k;
        st[d] = s[sd] == 1 ? 0 : acc;
        acc *= s[sd];
      }
      return st;
    };
    const std::vector<int64_t> sg = strides(g.shape()), so = strides(like.shape());
    dispatch(AllFloatTypes{}, g.dtype(), "SumToShape", [&]<typename T>() {
      const T* pg = g.data<T>();
      std::vector<double> acc(static_cast<size_t>(out.size()), 0.0);
      std::vector<int64_t> idx(r, 0);
      const int64_t total = shape_size(joint_);
      for (int64_t p = 0; p < total; ++p) {
        int64_t og = 0, oo = 0;
        for (size_t d = 0; d < r; ++d) og += idx[d] * sg[d], oo += idx[d] * so[d];
        acc[size_t(oo)] += double(to_compute(pg[og]));
        for (size_t d = r; d-- > 0;) {
          if (++idx[d] < joint_[d]) break;
          idx[d] = 0;
        }
      }
      T* po = out.data<T>();
      for (size_t j = 0; j < acc.size(); ++j) po[j] = from_compute<T>(acc[j]);
    });
  }

 private:
  Shape joint_;
  bool same_ = false;
};

const OpRegistration kSumToShape{"kiln", "SumToShape", 1, make_kernel<SumToShape>};

}  // namespace
}  // namespace kiln
