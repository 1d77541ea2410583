// Det (opset 11): determinants of the square matrices in the last two dimensions of X
// [..., M, M], by LU decomposition with partial pivoting in double precision.
#include <cmath>
#include <utility>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {

class Det : public Kernel {
 public:
  explicit Det(const ir::Node&) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    dispatch(AllFloatTypes{}, x.dtype(), "Det", []<typename T>() {});
    if (x.rank() < 2 || x.dim(x.rank() - 1) != x.dim(x.rank() - 2))
      fail(ErrorCode::InvalidArgument, "X must be [..., M, M] (square matrices), got ", shape_str(x.shape()));
    ctx.set_output(0, x.dtype(), Shape(x.shape().begin(), x.shape().end() - 2));
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    const int64_t m = x.dim(x.rank() - 1), count = y.size();
    dispatch(AllFloatTypes{}, x.dtype(), "Det", [&]<typename T>() {
      const T* px = x.data<T>();
      T* py = y.data<T>();
      parallel_for(count, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, m * m * m)), [&](int64_t s, int64_t e) {
        std::vector<double> a(static_cast<size_t>(m * m));
        for (int64_t b = s; b < e; ++b) {
          for (int64_t k = 0; k < m * m; ++k) a[size_t(k)] = double(to_compute(px[b * m * m + k]));
          py[b] = from_compute<T>(lu_det(a.data(), m));
        }
      });
    });
  }

 private:
  static double lu_det(double* a, int64_t m) {
    double det = 1;
    for (int64_t col = 0; col < m; ++col) {
      int64_t piv = col;
      for (int64_t r = col + 1; r < m; ++r)
        if (std::fabs(a[r * m + col]) > std::fabs(a[piv * m + col])) piv = r;
      if (a[piv * m + col] == 0) return 0;
      if (piv != col) {
        for (int64_t k = 0; k < m; ++k) std::swap(a[col * m + k], a[piv * m + k]);
        det = -det;
      }
      const double p = a[col * m + col];
      det *= p;
      for (int64_t r = col + 1; r < m; ++r) {
        const double f = a[r * m + col] / p;
        for (int64_t k = col + 1; k < m; ++k) a[r * m + k] -= f * a[col * m + k];
      }
    }
    return det;
  }
};

const OpRegistration kDet{"", "Det", 11, make_kernel<Det>};

}  // namespace
}  // namespace kiln
