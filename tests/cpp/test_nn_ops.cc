// Hand-derived cases for the nn ops (most from the ONNX operator documentation's examples).
#include <cmath>
#include <numeric>

#include "op_tester.h"

namespace kiln::test {

namespace {
std::vector<float> iota_f(int n, float start = 0) {
  std::vector<float> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), start);
  return v;
}
}  // namespace

TEST(Conv, OnnxExampleWithAndWithoutPadding) {
  const std::vector<float> ones(9, 1.f);
  OpTester("Conv").input<float>("X", {1, 1, 5, 5}, iota_f(25)).constant<float>("W", {1, 1, 3, 3}, ones)
      .attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .output<float>("Y", {1, 1, 5, 5}, {12, 21, 27, 33, 24, 33, 54, 63, 72, 51, 63, 99, 108, 117, 81,
                                         93, 144, 153, 162, 111, 72, 111, 117, 123, 84})
      .run();
  OpTester("Conv").input<float>("X", {1, 1, 5, 5}, iota_f(25)).input<float>("W", {1, 1, 3, 3}, ones)
      .output<float>("Y", {1, 1, 3, 3}, {54, 63, 72, 99, 108, 117, 144, 153, 162}).run();
}

TEST(Conv, StridesAndPaddingFloat64) {
  std::vector<double> x(35);
  std::iota(x.begin(), x.end(), 0.0);
  OpTester("Conv").input<double>("X", {1, 1, 7, 5}, x).constant<double>("W", {1, 1, 3, 3}, std::vector<double>(9, 1.0))
      .attr("strides", std::vector<int64_t>{2, 2}).attr("pads", std::vector<int64_t>{1, 1, 1, 1})
      .output<double>("Y", {1, 1, 4, 3}, {12, 27, 24, 63, 108, 81, 123, 198, 141, 112, 177, 124}).run();
}

TEST(Conv, DepthwiseWithBias) {
  // Two channels, each with its own 2-tap kernel, plus a per-channel bias.
  OpTester("Conv").input<float>("X", {1, 2, 3}, {1, 2, 3, 10, 20, 30}).constant<float>("W", {2, 1, 2}, {1, -1, 2, 1})
      .constant<float>("B", {2}, {0.5f, -1}).attr("group", int64_t(2))
      .output<float>("Y", {1, 2, 2}, {-0.5f, -0.5f, 39, 69}).run();
}

TEST(Conv, ChannelMismatchNamesBothShapes) {
  OpTester("Conv").input<float>("X", {1, 3, 4, 4}, std::vector<float>(48, 1)).input<float>("W", {2, 2, 1, 1}, {1, 1, 1, 1})
      .output<float>("Y", {1, 2, 4, 4}, std::vector<float>(32, 0))
      .expect_failure("X [1,3,4,4] has 3 channels but W [2,2,1,1] expects 2 x group 1 = 2");
}

TEST(FusedConv, ResidualThenRelu) {
  // conv = [-1, 1, -1]; + B 0.5 + Z [0, 1, -10] = [-0.5, 2.5, -10.5]; Relu.
  OpTester("FusedConv", 17, "kiln").input<float>("X", {1, 1, 4}, {1, -2, 3, -4}).constant<float>("W", {1, 1, 2}, {1, 1})
      .input<float>("B", {1}, {0.5f}).input<float>("Z", {1, 1, 3}, {0, 1, -10}).attr("activation", "Relu")
      .output<float>("Y", {1, 1, 3}, {0, 2.5f, 0}).run();
}

TEST(FusedConv, ClipWithoutResidual) {
  OpTester("FusedConv", 17, "kiln").input<float>("X", {1, 1, 4}, {1, -2, 3, -4}).constant<float>("W", {1, 1, 1}, {2})
      .attr("activation", "Clip").attr("activation_params", std::vector<float>{-3, 4})
      .output<float>("Y", {1, 1, 4}, {2, -3, 4, -3}).run();
}

TEST(ConvTranspose, OnnxDilationsExample) {
  OpTester("ConvTranspose").input<float>("X", {1, 1, 3, 3}, {3, 8, 1, 9, 5, 7, 3, 2, 6})
      .constant<float>("W", {1, 1, 2, 2}, {7, 2, 1, 9}).attr("dilations", std::vector<int64_t>{2, 2})
      .output<float>("Y", {1, 1, 5, 5}, {21, 56, 13, 16, 2, 63, 35, 67, 10, 14, 24, 22, 76, 76, 21,
                                         9, 5, 88, 45, 63, 3, 2, 33, 18, 54})
      .run();
}

TEST(ConvTranspose, OnnxPadsExample) {
  const std::vector<float> plane = {1, 1, 3, 1, 1, 3, 7, 4, 9, 7, 4, 9, 7, 4, 9, 13, 7, 15, 13, 7, 15};
  std::vector<float> y = plane;
  y.insert(y.end(), plane.begin(), plane.end());
  OpTester("ConvTranspose").input<float>("X", {1, 1, 3, 3}, iota_f(9)).constant<float>("W", {1, 2, 3, 3}, std::vector<float>(18, 1))
      .attr("strides", std::vector<int64_t>{3, 2}).attr("pads", std::vector<int64_t>{1, 2, 1, 2})
      .output<float>("Y", {1, 2, 7, 3}, y).run();
}

TEST(ConvTranspose, OutputPaddingFloat64WithBias) {
  // x = [1, 2, 3], stride 2, kernel [1, 1, 1]: [1, 1, 3, 2, 5, 3, 3], one more zero, then + 1.
  OpTester("ConvTranspose").input<double>("X", {1, 1, 3}, {1, 2, 3}).input<double>("W", {1, 1, 3}, {1, 1, 1})
      .input<double>("B", {1}, {1}).attr("strides", std::vector<int64_t>{2}).attr("output_padding", std::vector<int64_t>{1})
      .output<double>("Y", {1, 1, 8}, {2, 2, 4, 3, 6, 4, 4, 1}).run();
}

TEST(Gemm, TransposedWithColumnC) {
  // A' = [[1, 2, 3], [4, 5, 6]], B' = [[1, 0], [0, 1], [1, 1]]: A'B' = [[4, 5], [10, 11]].
  OpTester("Gemm").input<float>("A", {3, 2}, {1, 4, 2, 5, 3, 6}).constant<float>("B", {2, 3}, {1, 0, 1, 0, 1, 1})
      .input<float>("C", {2, 1}, {100, 200}).attr("transA", int64_t(1)).attr("transB", int64_t(1))
      .attr("alpha", 2.f).attr("beta", 0.5f).output<float>("Y", {2, 2}, {58, 60, 120, 122}).run();
}

TEST(Gemm, RowBiasAndFloat64) {
  OpTester("Gemm").input<float>("A", {1, 2}, {1, 2}).constant<float>("B", {2, 3}, {1, 2, 3, 4, 5, 6})
      .constant<float>("C", {3}, {1, 1, 1}).output<float>("Y", {1, 3}, {10, 13, 16}).run();
  OpTester("Gemm").input<double>("A", {1, 2}, {1, 2}).input<double>("B", {2, 3}, {1, 2, 3, 4, 5, 6})
      .input<double>("C", {1}, {-1}).attr("beta", 2.f).output<double>("Y", {1, 3}, {7, 10, 13}).run();
}

TEST(MaxPool, IndicesRowAndColumnMajor) {
  // 2x3 plane per channel, kernel 2x2 stride 1: windows over columns 0-1 and 1-2.
  const std::vector<float> x = {1, 5, 2, 4, 3, 6, 9, 7, 8, 7, 9, 0};
  OpTester("MaxPool").input<float>("X", {1, 2, 2, 3}, x).attr("kernel_shape", std::vector<int64_t>{2, 2})
      .output<float>("Y", {1, 2, 1, 2}, {5, 6, 9, 9}).output<int64_t>("I", {1, 2, 1, 2}, {1, 5, 6, 10}).run();
  OpTester("MaxPool").input<float>("X", {1, 2, 2, 3}, x).attr("kernel_shape", std::vector<int64_t>{2, 2})
      .attr("storage_order", int64_t(1))
      .output<float>("Y", {1, 2, 1, 2}, {5, 6, 9, 9}).output<int64_t>("I", {1, 2, 1, 2}, {2, 5, 6, 9}).run();
}

TEST(MaxPool, CeilModeAndInt8) {
  // Length 5, kernel 2, stride 2: ceil_mode keeps the half window [4].
  OpTester("MaxPool").input<int8_t>("X", {1, 1, 5}, {1, -3, 7, 2, -5}).attr("kernel_shape", std::vector<int64_t>{2})
      .attr("strides", std::vector<int64_t>{2}).attr("ceil_mode", int64_t(1))
      .output<int8_t>("Y", {1, 1, 3}, {1, 7, -5}).run();
}

TEST(AveragePool, CountIncludePad) {
  const std::vector<float> x = iota_f(9, 1);
  for (int include : {0, 1}) {
    std::vector<float> want = include ? std::vector<float>{0.25f, 1.25f, 2.75f, 7} : std::vector<float>{1, 2.5f, 5.5f, 7};
    OpTester("AveragePool").input<float>("X", {1, 1, 3, 3}, x).attr("kernel_shape", std::vector<int64_t>{2, 2})
        .attr("strides", std::vector<int64_t>{2, 2}).attr("pads", std::vector<int64_t>{1, 1, 1, 1})
        .attr("count_include_pad", int64_t(include)).output<float>("Y", {1, 1, 2, 2}, want).run();
  }
}

TEST(AveragePool, DilatedOpset19) {
  // Length 5, kernel 2 dilation 2: windows {0, 2}, {1, 3}, {2, 4}.
  OpTester("AveragePool", 19).input<float>("X", {1, 1, 5}, {1, 2, 4, 8, 16}).attr("kernel_shape", std::vector<int64_t>{2})
      .attr("dilations", std::vector<int64_t>{2}).output<float>("Y", {1, 1, 3}, {2.5f, 5, 10}).run();
}

TEST(LpPool, TwoNormOfWindows) {
  OpTester("LpPool").input<float>("X", {1, 1, 4}, {3, -4, 0, 5}).attr("kernel_shape", std::vector<int64_t>{2})
      .attr("strides", std::vector<int64_t>{2}).output<float>("Y", {1, 1, 2}, {5, 5}).run();
}

TEST(GlobalPools, AverageMaxLp) {
  const std::vector<float> x = {1, 2, 3, 6, -1, -2, -3, -6};
  OpTester("GlobalAveragePool").input<float>("X", {1, 2, 2, 2}, x).output<float>("Y", {1, 2, 1, 1}, {3, -3}).run();
  OpTester("GlobalMaxPool").input<float>("X", {1, 2, 2, 2}, x).output<float>("Y", {1, 2, 1, 1}, {6, -1}).run();
  OpTester("GlobalLpPool").input<float>("X", {1, 2, 4}, x).attr("p", int64_t(1)).output<float>("Y", {1, 2, 1}, {12, 12}).run();
}

TEST(BatchNormalization, PerChannel) {
  // c0: (x - 1) / 2; c1: (x - 3) / 1 * 2 + 1.
  OpTester("BatchNormalization", 15).input<float>("X", {1, 2, 1, 2}, {1, 2, 3, 4}).constant<float>("scale", {2}, {1, 2})
      .constant<float>("B", {2}, {0, 1}).input<float>("mean", {2}, {1, 3}).input<float>("var", {2}, {4, 1})
      .attr("epsilon", 0.f).output<float>("Y", {1, 2, 1, 2}, {0, 0.5f, 1, 3}).run();
}

TEST(BatchNormalization, TrainingModeIsRefused) {
  OpTester("BatchNormalization", 15).input<float>("X", {1, 1, 1}, {1}).input<float>("scale", {1}, {1})
      .input<float>("B", {1}, {0}).input<float>("mean", {1}, {0}).input<float>("var", {1}, {1})
      .attr("training_mode", int64_t(1)).output<float>("Y", {1, 1, 1}, {1})
      .expect_failure("training_mode=1 is not supported");
}

TEST(InstanceNormalization, OnePlane) {
  const double s = 2 / std::sqrt(1.25);
  OpTester("InstanceNormalization").input<float>("input", {1, 1, 4}, {1, 2, 3, 4}).input<float>("scale", {1}, {2})
      .input<float>("B", {1}, {1}).attr("epsilon", 0.f)
      .output<float>("Y", {1, 1, 4}, {float(1 - 1.5 * s), float(1 - 0.5 * s), float(1 + 0.5 * s), float(1 + 1.5 * s)})
      .run();
}

TEST(LRN, EvenSizeWindowLeansForward) {
  // size 2: channel c sums c and c + 1; alpha / size = 1.5, bias 1, beta 1.
  OpTester("LRN").input<float>("X", {1, 3, 1, 1}, {1, 2, 3}).attr("size", int64_t(2)).attr("alpha", 3.f)
      .attr("beta", 1.f).attr("bias", 1.f).output<float>("Y", {1, 3, 1, 1}, {1 / 8.5f, 2 / 20.5f, 3 / 14.5f}).run();
}

TEST(LRN, OddSizeOnOneDnn) {
  // size 3, alpha / size = 1, beta 0.5, bias 0: x / sqrt(sum of squares of neighbours).
  OpTester("LRN").input<float>("X", {1, 3, 1, 1}, {3, 4, 0}).attr("size", int64_t(3)).attr("alpha", 3.f)
      .attr("beta", 0.5f).attr("bias", 0.f).output<float>("Y", {1, 3, 1, 1}, {0.6f, 0.8f, 0}).run();
}

}  // namespace kiln::test
