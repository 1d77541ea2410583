// Ops that read and write channels-last storage when the layout pass marks them kiln_nhwc: the
// shapes stay logical [N, C, H, W], the bytes are in [N, H, W, C] order (written out below).
#include <limits>

#include "op_tester.h"

namespace kiln::test {

TEST(ChannelsLast, AddBroadcastsAPerChannelScale) {
  // x [1, 2, 2, 3] stored NHWC: pixel (h, w) holds channel values {10h + w, 100 + 10h + w}.
  std::vector<float> x, y;
  for (int h = 0; h < 2; ++h)
    for (int w = 0; w < 3; ++w)
      for (int c = 0; c < 2; ++c) {
        x.push_back(float(100 * c + 10 * h + w));
        y.push_back(float(100 * c + 10 * h + w + 1000 * (c + 1)));
      }
  OpTester("Add").attr("kiln_nhwc", 1).input<float>("A", {1, 2, 2, 3}, x).input<float>("B", {1, 2, 1, 1}, {1000, 2000})
      .output<float>("C", {1, 2, 2, 3}, y).run();
  // a [C, 1, 1] operand reads the same in both layouts too
  OpTester("Mul").attr("kiln_nhwc", 1).input<float>("A", {1, 2, 2, 3}, x).input<float>("B", {2, 1, 1}, {1, -1})
      .output<float>("C", {1, 2, 2, 3}, [&] {
        std::vector<float> v = x;
        for (size_t i = 1; i < v.size(); i += 2) v[i] = -v[i];
        return v;
      }()).run();
}

TEST(ChannelsLast, RefusesAnOperandStoredNchw) {
  OpTester("Add").attr("kiln_nhwc", 1).input<float>("A", {1, 2, 2, 3}, std::vector<float>(12, 1.f))
      .input<float>("B", {3}, {1, 2, 3}).output<float>("C", {1, 2, 2, 3}, std::vector<float>(12))
      .expect_failure("is stored NCHW and is not [.., C, 1, 1]");
}

TEST(ChannelsLast, GlobalAveragePoolConcatAndMaxPool) {
  // x [1, 2, 2, 2] NHWC: pixels (0,0) (0,1) (1,0) (1,1) hold channel pairs.
  const std::vector<float> x = {1, 10, 2, 20, 3, 30, 6, 60};
  OpTester("GlobalAveragePool").attr("kiln_nhwc", 1).input<float>("X", {1, 2, 2, 2}, x)
      .output<float>("Y", {1, 2, 1, 1}, {3, 30}).run();
  OpTester("MaxPool").attr("kiln_nhwc", 1).attr("kernel_shape", std::vector<int64_t>{2, 2})
      .input<float>("X", {1, 2, 2, 2}, x).output<float>("Y", {1, 2, 1, 1}, {6, 60}).run();
  // A NaN anywhere in a window is its maximum, as in PyTorch: in the window's last row, and in
  // its first tap with larger values after it.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  OpTester("MaxPool").attr("kiln_nhwc", 1).attr("kernel_shape", std::vector<int64_t>{2, 2})
      .input<float>("X", {1, 2, 2, 2}, {1, 10, 2, 20, 3, nan, 6, 60}).output<float>("Y", {1, 2, 1, 1}, {6, nan}).run();
  OpTester("MaxPool").attr("kiln_nhwc", 1).attr("kernel_shape", std::vector<int64_t>{2, 2})
      .input<float>("X", {1, 2, 2, 2}, {nan, 10, 2, 20, 3, 30, 6, 60}).output<float>("Y", {1, 2, 1, 1}, {nan, 60}).run();
  // Concat on channels: each pixel's channels of A, then of B.
  OpTester("Concat").attr("kiln_nhwc", 1).attr("axis", 1).input<float>("A", {1, 1, 1, 2}, {7, 8})
      .input<float>("B", {1, 2, 1, 2}, {1, 10, 2, 20}).output<float>("C", {1, 3, 1, 2}, {7, 1, 10, 8, 2, 20}).run();
}

TEST(ChannelsLast, MaxPoolOverChannelBlocks) {
  // [2, 37, 9, 11] NHWC (two blocks of 16 channels and a partial one), 3x3 windows with strides
  // (2, 3), pads (1, 0, 2, 1), dilations (1, 2) and ceil mode, against a direct loop; a NaN in
  // one channel of one pixel is the maximum of every window that holds it.
  const int64_t n = 2, c = 37, h = 9, w = 11, oh = 5, ow = 4;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x = uniform_values(n * h * w * c, 21, 4.f);
  x[size_t(((1 * h + 4) * w + 6) * c + 20)] = nan;  // image 1, pixel (4, 6), channel 20
  std::vector<float> y;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < oh; ++r)
      for (int64_t q = 0; q < ow; ++q)
        for (int64_t k = 0; k < c; ++k) {
          float m = -std::numeric_limits<float>::infinity();
          for (int64_t a = 0; a < 3; ++a)
            for (int64_t b = 0; b < 3; ++b) {
              const int64_t ih = r * 2 - 1 + a, iw = q * 3 + 2 * b;
              if (ih < 0 || ih >= h || iw >= w) continue;
              const float v = x[size_t(((i * h + ih) * w + iw) * c + k)];
              if (v != v || v > m) m = m != m ? m : v;
            }
          y.push_back(m);
        }
  OpTester("MaxPool").attr("kiln_nhwc", 1).attr("kernel_shape", std::vector<int64_t>{3, 3})
      .attr("strides", std::vector<int64_t>{2, 3}).attr("pads", std::vector<int64_t>{1, 0, 2, 1})
      .attr("dilations", std::vector<int64_t>{1, 2}).attr("ceil_mode", 1)
      .input<float>("X", {n, c, h, w}, x).output<float>("Y", {n, c, oh, ow}, y).run();
}

TEST(ChannelsLast, GlobalAveragePoolOverChannelBlocks) {
  // [2, 130, 1, 3] NHWC: three channel blocks per image, split over the team.
  const int n = 2, c = 130, pixels = 3;
  std::vector<float> x, y(size_t(n * c), 0.f);
  for (int i = 0; i < n; ++i)
    for (int p = 0; p < pixels; ++p)
      for (int k = 0; k < c; ++k) {
        const float v = float((i * 7 + p * 3 + k) % 11) - 5.f;
        x.push_back(v);
        y[size_t(i * c + k)] += v / float(pixels);
      }
  OpTester("GlobalAveragePool").attr("kiln_nhwc", 1).input<float>("X", {n, c, 1, pixels}, x)
      .output<float>("Y", {n, c, 1, 1}, y).run();
}

TEST(ChannelsLast, GlobalAveragePoolOverRowRanges) {
  // One image of [70, 30, 20] NHWC: fewer images than threads, so threads sum row ranges.
  const int c = 70, pixels = 600;
  std::vector<float> x, y(size_t(c), 0.f);
  for (int p = 0; p < pixels; ++p)
    for (int k = 0; k < c; ++k) {
      const float v = float((p * 5 + k * 3) % 13) - 6.f + 0.25f * float(p % 4);
      x.push_back(v);
      y[size_t(k)] += v / float(pixels);
    }
  OpTester("GlobalAveragePool").attr("kiln_nhwc", 1).input<float>("X", {1, c, 30, 20}, x)
      .output<float>("Y", {1, c, 1, 1}, y).tolerance(1e-5, 1e-5).run();
}

TEST(ChannelsLast, PointwiseConvolutionWithAMegabyteWeight) {
  // A 1x1 FusedConv on NHWC data with a 256x1024 weight runs as one GEMM: Y = Relu(X W + B + Z),
  // the residual added before the activation.
  const int64_t c = 256, k = 1024, pixels = 5 * 7;
  auto values = [](int64_t n, int seed) {
    std::vector<float> v(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) v[size_t(i)] = float((i * 7919 + seed * 104729) % 2001) / 1000.f - 1.f;
    return v;
  };
  const std::vector<float> x = values(pixels * c, 1), w = values(k * c, 2), b = values(k, 3), z = values(pixels * k, 4);
  std::vector<float> y(size_t(pixels * k));
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t f = 0; f < k; ++f) {
      double sum = b[size_t(f)] + z[size_t(p * k + f)];
      for (int64_t ch = 0; ch < c; ++ch) sum += double(x[size_t(p * c + ch)]) * double(w[size_t(f * c + ch)]);
      y[size_t(p * k + f)] = float(std::max(sum, 0.0));
    }
  OpTester("FusedConv", 17, "kiln")
      .attr("kiln_x_nhwc", 1)
      .attr("kiln_y_nhwc", 1)
      .attr("activation", "Relu")
      .input<float>("X", {1, c, 5, 7}, x)
      .constant<float>("W", {k, c, 1, 1}, w)
      .constant<float>("B", {k}, b)
      .input<float>("Z", {1, k, 5, 7}, z)
      .output<float>("Y", {1, k, 5, 7}, y)
      .tolerance(1e-4, 1e-4)
      .run();
}

TEST(ChannelsLast, StridedPointwiseConvolutionWithAMegabyteWeight) {
  // ResNet's downsampling: a 1x1 FusedConv with strides (2, 3) over two 9x10 NHWC images reads
  // every other row and every third column; it runs as one GEMM over the gathered pixels.
  const int64_t n = 2, c = 256, k = 1024, h = 9, w = 10, oh = 5, ow = 4;
  auto values = [](int64_t count, int seed) {
    std::vector<float> v(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) v[size_t(i)] = float((i * 7919 + seed * 104729) % 2001) / 1000.f - 1.f;
    return v;
  };
  const std::vector<float> x = values(n * h * w * c, 5), wt = values(k * c, 6), b = values(k, 7);
  std::vector<float> y(size_t(n * oh * ow * k));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < oh; ++r)
      for (int64_t j = 0; j < ow; ++j)
        for (int64_t f = 0; f < k; ++f) {
          double sum = b[size_t(f)];
          const int64_t at = ((i * h + 2 * r) * w + 3 * j) * c;
          for (int64_t ch = 0; ch < c; ++ch) sum += double(x[size_t(at + ch)]) * double(wt[size_t(f * c + ch)]);
          y[size_t(((i * oh + r) * ow + j) * k + f)] = float(std::max(sum, 0.0));
        }
  OpTester("FusedConv", 17, "kiln")
      .attr("kiln_x_nhwc", 1)
      .attr("kiln_y_nhwc", 1)
      .attr("activation", "Relu")
      .attr("strides", std::vector<int64_t>{2, 3})
      .input<float>("X", {n, c, h, w}, x)
      .constant<float>("W", {k, c, 1, 1}, wt)
      .constant<float>("B", {k}, b)
      .output<float>("Y", {n, k, oh, ow}, y)
      .tolerance(1e-4, 1e-4)
      .run();
}

}  // namespace kiln::test
