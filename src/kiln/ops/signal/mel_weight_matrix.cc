// MelWeightMatrix (opset 17): [dft_length / 2 + 1, num_mel_bins] triangular filters that map a
// onesided spectrum to mel bands between lower_edge_hertz and upper_edge_hertz. Band edges
// are num_mel_bins + 2 points evenly spaced in mel (mel = 2595 log10(1 + hz / 700)), snapped
// down to spectrum bins as floor((dft_length + 1) hz / sample_rate), as in ONNX's reference.
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {

class MelWeightMatrix : public Kernel {
 public:
  explicit MelWeightMatrix(const ir::Node& node)
      : dtype_(DType(node.attr_int("output_datatype", int64_t(DType::Float32)))) {
    if (!dtype_valid(int32_t(dtype_)) || dtype_ == DType::String || dtype_ == DType::Bool)
      fail(ErrorCode::InvalidGraph, "output_datatype ", int64_t(dtype_), " is not a numeric type");
  }

  void prepare(OpContext& ctx) override {
    auto int_scalar = [&](int i, const char* what) {
      const Tensor& t = ctx.input(i);
      if (t.size() != 1 || (t.dtype() != DType::Int32 && t.dtype() != DType::Int64))
        fail(ErrorCode::InvalidArgument, what, " must be an int32 or int64 scalar, got ", dtype_name(t.dtype()), " ",
             shape_str(t.shape()));
      return t.to_int64s()[0];
    };
    auto float_scalar = [&](int i, const char* what) {
      const Tensor& t = ctx.input(i);
      if (t.size() != 1) fail(ErrorCode::InvalidArgument, what, " must be a scalar, got ", shape_str(t.shape()));
      return dispatch(AllFloatTypes{}, t.dtype(), what, [&]<typename T>() { return double(to_compute(t.data<T>()[0])); });
    };
    mel_bins_ = int_scalar(0, "num_mel_bins");
    dft_length_ = int_scalar(1, "dft_length");
    sample_rate_ = int_scalar(2, "sample_rate");
    lower_ = float_scalar(3, "lower_edge_hertz");
    upper_ = float_scalar(4, "upper_edge_hertz");
    if (mel_bins_ <= 0 || dft_length_ <= 0 || sample_rate_ <= 0)
      fail(ErrorCode::InvalidArgument, "num_mel_bins, dft_length and sample_rate must be positive, got ", mel_bins_, ", ",
           dft_length_, ", ", sample_rate_);
    if (!(lower_ >= 0 && lower_ < upper_ && upper_ <= double(sample_rate_) / 2))
      fail(ErrorCode::InvalidArgument, "the edges must satisfy 0 <= lower_edge_hertz < upper_edge_hertz <= ",
           "sample_rate / 2, got ", lower_, " and ", upper_);
    dispatch(AllNumericTypes{}, dtype_, "MelWeightMatrix", []<typename T>() {});
    ctx.set_output(0, dtype_, {dft_length_ / 2 + 1, mel_bins_});
  }

  void compute(OpContext& ctx) override {
    const int64_t rows = dft_length_ / 2 + 1, cols = mel_bins_;
    auto to_mel = [](double hz) { return 2595.0 * std::log10(1.0 + hz / 700.0); };
    const double low_mel = to_mel(lower_), step = (to_mel(upper_) - low_mel) / double(cols + 2);
    std::vector<int64_t> edge(static_cast<size_t>(cols + 2));
    for (int64_t k = 0; k < cols + 2; ++k) {
      const double hz = 700.0 * (std::pow(10.0, (double(k) * step + low_mel) / 2595.0) - 1.0);
      edge[size_t(k)] = std::min<int64_t>(rows - 1, int64_t(std::floor(double(dft_length_ + 1) * hz / double(sample_rate_))));
    }
    std::vector<double> w(static_cast<size_t>(rows * cols), 0.0);
    for (int64_t i = 0; i < cols; ++i) {
      const int64_t lo = edge[size_t(i)], center = edge[size_t(i + 1)], hi = edge[size_t(i + 2)];
      if (center == lo) {
        w[size_t(center * cols + i)] = 1;
      } else {
        for (int64_t j = lo; j <= center; ++j) w[size_t(j * cols + i)] = double(j - lo) / double(center - lo);
      }
      for (int64_t j = center; j < hi; ++j) w[size_t(j * cols + i)] = double(hi - j) / double(hi - center);
    }
    dispatch(AllNumericTypes{}, dtype_, "MelWeightMatrix", [&]<typename T>() {
      T* y = ctx.output(0).data<T>();
      for (size_t k = 0; k < w.size(); ++k) y[k] = from_compute<T>(w[k]);
    });
  }

  std::vector<int> value_inputs() const override { return {0, 1, 2, 3, 4}; }

 private:
  DType dtype_;
  int64_t mel_bins_ = 0, dft_length_ = 0, sample_rate_ = 0;
  double lower_ = 0, upper_ = 0;
};

const OpRegistration kMelWeightMatrix{"", "MelWeightMatrix", 17, make_kernel<MelWeightMatrix>};

}  // namespace
}  // namespace kiln
