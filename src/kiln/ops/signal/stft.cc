// STFT (opset 17): frames of frame_length samples every frame_step samples of a real
// ([batch, length, 1]) or complex ([batch, length, 2]) signal, each multiplied by the window
// (input 2, optional) and Fourier-transformed; onesided (default 1) keeps n/2 + 1 bins.
// Output [batch, frames, bins, 2].
#include <algorithm>

#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/signal/fft.h"

namespace kiln {
namespace {

using SignalTypes = TypeList<float, double, Float16, BFloat16>;

int64_t scalar_int(const Tensor& t, const char* what) {
  if (t.size() != 1) fail(ErrorCode::InvalidArgument, what, " must be a scalar, got ", shape_str(t.shape()));
  return t.to_int64s()[0];
}

class STFT : public Kernel {
 public:
  explicit STFT(const ir::Node& node) : onesided_(node.attr_int("onesided", 1) != 0) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    dispatch(SignalTypes{}, x.dtype(), "STFT", []<typename T>() {});
    if (x.rank() != 3 || (x.dim(2) != 1 && x.dim(2) != 2))
      fail(ErrorCode::InvalidArgument, "signal must be [batch, length, 1] or [batch, length, 2], got ",
           shape_str(x.shape()));
    complex_in_ = x.dim(2) == 2;
    if (onesided_ && complex_in_) fail(ErrorCode::InvalidArgument, "onesided=1 needs a real signal ([batch, length, 1])");
    step_ = scalar_int(ctx.input(1), "frame_step");
    if (step_ <= 0) fail(ErrorCode::InvalidArgument, "frame_step must be positive, got ", step_);
    has_window_ = ctx.has_input(2);
    if (has_window_) {
      const Tensor& w = ctx.input(2);
      if (w.rank() != 1 || w.dtype() != x.dtype())
        fail(ErrorCode::InvalidArgument, "window must be 1-D ", dtype_name(x.dtype()), ", got ", dtype_name(w.dtype()),
             " ", shape_str(w.shape()));
      len_ = w.dim(0);
    }
    if (ctx.has_input(3)) {
      const int64_t len = scalar_int(ctx.input(3), "frame_length");
      if (has_window_ && len != len_)
        fail(ErrorCode::InvalidArgument, "frame_length ", len, " differs from the window's length ", len_);
      len_ = len;
    } else if (!has_window_) {
      fail(ErrorCode::InvalidArgument, "either window or frame_length must be given");
    }
    if (len_ <= 0 || len_ > x.dim(1))
      fail(ErrorCode::InvalidArgument, "frame length ", len_, " must be in [1, signal length ", x.dim(1), "]");
    frames_ = (x.dim(1) - len_) / step_ + 1;
    bins_ = onesided_ ? len_ / 2 + 1 : len_;
    if (fft_.size() != len_) fft_ = signal::Fft(len_, false);
    ctx.set_output(0, x.dtype(), {x.dim(0), frames_, bins_, 2});
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    dispatch(SignalTypes{}, x.dtype(), "STFT", [&]<typename T>() {
      const T* px = x.data<T>();
      const T* win = has_window_ ? ctx.input(2).data<T>() : nullptr;
      T* py = y.data<T>();
      const int64_t comps = complex_in_ ? 2 : 1, length = x.dim(1);
      parallel_for(x.dim(0) * frames_, std::max<int64_t>(1, 4096 / len_), [&](int64_t s, int64_t e) {
        std::vector<signal::cplx> buf(static_cast<size_t>(len_)), scratch(fft_.scratch_size());
        for (int64_t f = s; f < e; ++f) {
          const int64_t b = f / frames_, start = (f % frames_) * step_;
          const T* src = px + (b * length + start) * comps;
          for (int64_t k = 0; k < len_; ++k) {
            const double w = win ? double(to_compute(win[k])) : 1.0;
            buf[size_t(k)] = {double(to_compute(src[k * comps])) * w,
                              complex_in_ ? double(to_compute(src[k * comps + 1])) * w : 0.0};
          }
          fft_.run(buf.data(), scratch.data());
          T* dst = py + f * bins_ * 2;
          for (int64_t k = 0; k < bins_; ++k) {
            dst[2 * k] = from_compute<T>(buf[size_t(k)].real());
            dst[2 * k + 1] = from_compute<T>(buf[size_t(k)].imag());
          }
        }
      });
    });
  }

  std::vector<int> value_inputs() const override { return {1, 3}; }

 private:
  bool onesided_, complex_in_ = false, has_window_ = false;
  int64_t step_ = 1, len_ = 0, frames_ = 0, bins_ = 0;
  signal::Fft fft_;
};

const OpRegistration kSTFT{"", "STFT", 17, make_kernel<STFT>};

}  // namespace
}  // namespace kiln
