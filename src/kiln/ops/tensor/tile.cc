// Tile: repeats the input repeats[d] times along each dimension d. Each output row (all but
// the last dim) is its source row laid end to end repeats[-1] times.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class Tile : public Kernel {
 public:
  explicit Tile(const ir::Node&) {}
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& r = ctx.input(1);
    if (r.dtype() != DType::Int64) fail(ErrorCode::InvalidArgument, "repeats must be int64, got ", dtype_name(r.dtype()));
    if (r.rank() != 1 || r.size() != x.rank())
      fail(ErrorCode::InvalidArgument, "repeats must be 1-D with one entry per input dim (", x.rank(), "), got shape ",
           shape_str(r.shape()));
    const std::vector<int64_t> reps = r.to_int64s();
    Shape out = x.shape();
    for (size_t d = 0; d < reps.size(); ++d) {
      if (reps[d] < 0) fail(ErrorCode::InvalidArgument, "repeats ", shape_str(reps), " has a negative entry");
      if (reps[d] > 0 && out[d] > (int64_t(1) << 50) / reps[d])
        fail(ErrorCode::InvalidArgument, "repeats ", shape_str(reps), " make the output too large");
      out[d] *= reps[d];
    }
    tensor_ops::check_shape_size(out, "output shape");
    ctx.set_output(0, x.dtype(), out);
  }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    if (y.size() == 0) return;
    if (x.rank() == 0) return copy_elements(x, y);
    const Shape& in = x.shape();
    const Shape& out = y.shape();
    const size_t r = in.size();
    const std::vector<int64_t> istr = tensor_ops::contiguous_strides(in);
    const int64_t in_row = in[r - 1], out_row = out[r - 1], rows = y.size() / out_row;
    tensor_ops::dispatch_elements(x.dtype(), [&]<typename T>() {
      const T* src = tensor_ops::elems<T>(x);
      T* dst = tensor_ops::elems<T>(y);
      parallel_for(rows, std::max<int64_t>(1, 32768 / out_row), [&](int64_t b, int64_t e) {
        for (int64_t row = b; row < e; ++row) {
          int64_t off = 0, rem = row;
          for (size_t d = r - 1; d-- > 0;) {
            off += (rem % out[d]) % in[d] * istr[d];
            rem /= out[d];
          }
          T* o = dst + row * out_row;
          for (int64_t k = 0; k < out_row; k += in_row) tensor_ops::copy_n(src + off, in_row, o + k);
        }
      });
    });
  }
  std::vector<int> value_inputs() const override { return {1}; }
};
const OpRegistration kTile{"Tile", make_kernel<Tile>};
}  // namespace
}  // namespace kiln
