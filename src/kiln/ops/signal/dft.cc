// DFT (opset 17): the discrete Fourier transform along `axis` of a real ([..., 1]) or complex
// ([..., 2]) signal, zero-padded or truncated to dft_length (input 1) when given. onesided
// keeps the n/2 + 1 non-redundant bins of a real signal's transform; inverse divides by n.
#include <algorithm>

#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/signal/fft.h"

namespace kiln {
namespace {

using SignalTypes = TypeList<float, double, Float16, BFloat16>;

class DFT : public Kernel {
 public:
  explicit DFT(const ir::Node& node)
      : axis_(node.attr_int("axis", 1)), inverse_(node.attr_int("inverse", 0) != 0),
        onesided_(node.attr_int("onesided", 0) != 0) {
    if (inverse_ && onesided_)
      fail(ErrorCode::NotImplemented, "inverse with onesided=1 is not supported (the input would be half a spectrum)");
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    dispatch(SignalTypes{}, x.dtype(), "DFT", []<typename T>() {});
    const int64_t r = x.rank();
    if (r < 2 || (x.shape().back() != 1 && x.shape().back() != 2))
      fail(ErrorCode::InvalidArgument, "input must be [batch, ..., 1] (real) or [batch, ..., 2] (complex), got ",
           shape_str(x.shape()));
    int64_t axis = axis_;
    if (axis < 0) axis += r - 1;  // counted without the trailing complex dimension
    if (axis < 0 || axis >= r - 1)
      fail(ErrorCode::InvalidArgument, "axis ", axis_, " is out of range for input ", shape_str(x.shape()));
    n_in_ = x.dim(axis);
    n_ = n_in_;
    if (ctx.has_input(1)) {
      const Tensor& len = ctx.input(1);
      if (len.size() != 1) fail(ErrorCode::InvalidArgument, "dft_length must be a scalar, got ", shape_str(len.shape()));
      n_ = len.to_int64s()[0];
      if (n_ <= 0) fail(ErrorCode::InvalidArgument, "dft_length must be positive, got ", n_);
    }
    complex_in_ = x.shape().back() == 2;
    if (onesided_ && complex_in_)
      fail(ErrorCode::InvalidArgument, "onesided=1 needs a real input ([..., 1]), got ", shape_str(x.shape()));
    n_out_ = onesided_ ? n_ / 2 + 1 : n_;
    outer_ = 1, inner_ = 1;
    for (int64_t d = 0; d < axis; ++d) outer_ *= x.dim(d);
    for (int64_t d = axis + 1; d < r - 1; ++d) inner_ *= x.dim(d);
    Shape out = x.shape();
    out[size_t(axis)] = n_out_;
    out.back() = 2;
    if (fft_.size() != n_) fft_ = signal::Fft(n_, inverse_);
    ctx.set_output(0, x.dtype(), out);
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    dispatch(SignalTypes{}, x.dtype(), "DFT", [&]<typename T>() {
      const T* px = x.data<T>();
      T* py = y.data<T>();
      const int64_t comps = complex_in_ ? 2 : 1, lines = outer_ * inner_, copy = std::min(n_in_, n_);
      const double scale = inverse_ ? 1.0 / double(n_) : 1.0;
      parallel_for(lines, std::max<int64_t>(1, 4096 / n_), [&](int64_t s, int64_t e) {
        std::vector<signal::cplx> buf(static_cast<size_t>(n_)), scratch(fft_.scratch_size());
        for (int64_t line = s; line < e; ++line) {
          const int64_t o = line / inner_, i = line % inner_;
          const T* src = px + (o * n_in_ * inner_ + i) * comps;
          for (int64_t k = 0; k < copy; ++k) {
            const T* p = src + k * inner_ * comps;
            buf[size_t(k)] = {double(to_compute(p[0])), complex_in_ ? double(to_compute(p[1])) : 0.0};
          }
          std::fill(buf.begin() + copy, buf.end(), signal::cplx(0));
          fft_.run(buf.data(), scratch.data());
          T* dst = py + (o * n_out_ * inner_ + i) * 2;
          for (int64_t k = 0; k < n_out_; ++k) {
            dst[k * inner_ * 2] = from_compute<T>(buf[size_t(k)].real() * scale);
            dst[k * inner_ * 2 + 1] = from_compute<T>(buf[size_t(k)].imag() * scale);
          }
        }
      });
    });
  }

  std::vector<int> value_inputs() const override { return {1}; }

 private:
  int64_t axis_;
  bool inverse_, onesided_, complex_in_ = false;
  int64_t n_in_ = 0, n_ = 0, n_out_ = 0, outer_ = 1, inner_ = 1;
  signal::Fft fft_;
};

const OpRegistration kDFT{"", "DFT", 17, make_kernel<DFT>};

}  // namespace
}  // namespace kiln
