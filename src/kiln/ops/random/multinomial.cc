// Multinomial (opset 7): for each row of unnormalized log-probabilities x [batch, classes]
// (float or double), sample_size class indices drawn with probabilities softmax(x), as int32
// (the default dtype) or int64. Output [batch, sample_size].
#include <algorithm>
#include <limits>

#include "kiln/ops/random/random_common.h"

namespace kiln {
namespace {

class Multinomial : public Kernel {
 public:
  explicit Multinomial(const ir::Node& node)
      : keys_(node), dtype_(random::read_dtype(node, DType::Int32)), samples_(node.attr_int("sample_size", 1)) {
    if (dtype_ != DType::Int32 && dtype_ != DType::Int64)
      fail(ErrorCode::InvalidGraph, "dtype must be int32 or int64, got ", dtype_name(dtype_));
    if (samples_ < 0) fail(ErrorCode::InvalidGraph, "sample_size must not be negative, got ", samples_);
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() != 2) fail(ErrorCode::InvalidArgument, "input must be [batch, classes], got ", shape_str(x.shape()));
    if (x.dim(1) == 0 && x.dim(0) > 0 && samples_ > 0)
      fail(ErrorCode::InvalidArgument, "there are no classes to sample from");
    dispatch(TypeList<float, double>{}, x.dtype(), "Multinomial", []<typename T>() {});
    ctx.set_output(0, dtype_, {x.dim(0), samples_});
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    const int64_t rows = x.dim(0), classes = x.dim(1);
    const uint64_t key = keys_.next();
    dispatch(TypeList<float, double>{}, x.dtype(), "Multinomial", [&]<typename T>() {
      const T* px = x.data<T>();
      parallel_for(rows, 1, [&](int64_t s, int64_t e) {
        std::vector<double> cdf(static_cast<size_t>(classes));
        for (int64_t r = s; r < e; ++r) {
          const T* row = px + r * classes;
          double mx = -std::numeric_limits<double>::infinity();
          for (int64_t c = 0; c < classes; ++c) mx = std::max(mx, double(row[c]));
          double total = 0;
          for (int64_t c = 0; c < classes; ++c) cdf[size_t(c)] = total += std::exp(double(row[c]) - mx);
          for (int64_t k = 0; k < samples_; ++k) {
            const double u = random::uniform01(key, uint64_t(r * samples_ + k)) * total;
            // The first class whose cumulative weight exceeds u; NaN weights fall to the last.
            int64_t c = std::upper_bound(cdf.begin(), cdf.end(), u) - cdf.begin();
            c = std::min(c, classes - 1);
            if (dtype_ == DType::Int32) y.data<int32_t>()[r * samples_ + k] = int32_t(c);
            else y.data<int64_t>()[r * samples_ + k] = c;
          }
        }
      });
    });
  }

 private:
  random::KeySource keys_;
  DType dtype_;
  int64_t samples_;
};

const OpRegistration kMultinomial{"", "Multinomial", 7, make_kernel<Multinomial>};

}  // namespace
}  // namespace kiln
