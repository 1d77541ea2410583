// Hand-derived cases for the reductions, softmax family, normalizations, TopK, Einsum and Resize.
#include <limits>

#include "op_tester.h"

namespace kiln::test {

constexpr float kInf = std::numeric_limits<float>::infinity();

TEST(ReduceSum, AxesInputKeepdims) {
  OpTester("ReduceSum", 13).input<float>("X", {2, 3}, {1, 2, 3, 4, 5, 6}).input<int64_t>("axes", {1}, {1})
      .output<float>("Y", {2, 1}, {6, 15}).run();
}

TEST(ReduceSum, NoAxesReducesAllUnlessNoop) {
  OpTester("ReduceSum", 13).input<float>("X", {2, 2}, {1, 2, 3, 4}).attr("keepdims", 0)
      .output<float>("Y", {}, {10}).run();
  OpTester("ReduceSum", 13).input<float>("X", {2, 2}, {1, 2, 3, 4}).attr("noop_with_empty_axes", 1)
      .output<float>("Y", {2, 2}, {1, 2, 3, 4}).run();
}

TEST(ReduceSum, EmptyReductionIsZero) {
  OpTester("ReduceSum", 13).input<float>("X", {2, 0}, {}).input<int64_t>("axes", {1}, {1}).attr("keepdims", 0)
      .output<float>("Y", {2}, {0, 0}).run();
}

TEST(ReduceMean, AxesAttributeBeforeOpset18) {
  OpTester("ReduceMean", 11).input<float>("X", {2, 2, 2}, {1, 2, 3, 4, 5, 6, 7, 8}).attr("axes", std::vector<int64_t>{0, 2})
      .attr("keepdims", 0).output<float>("Y", {2}, {3.5f, 5.5f}).run();
}

TEST(ReduceMean, IntegerMeanTruncates) {
  OpTester("ReduceMean", 18).input<int32_t>("X", {1, 3}, {1, 2, 2}).input<int64_t>("axes", {1}, {-1})
      .output<int32_t>("Y", {1, 1}, {1}).run();
}

TEST(ReduceMax, Int8AndEmptyGivesLowest) {
  OpTester("ReduceMax", 18).input<int8_t>("X", {2, 2}, {-5, 7, -128, -3}).input<int64_t>("axes", {1}, {0})
      .output<int8_t>("Y", {1, 2}, {-5, 7}).run();
  OpTester("ReduceMax", 18).input<float>("X", {0, 2}, {}).input<int64_t>("axes", {1}, {0}).attr("keepdims", 0)
      .output<float>("Y", {2}, {-kInf, -kInf}).run();
}

TEST(ReduceMin, Uint8) {
  OpTester("ReduceMin", 13).input<uint8_t>("X", {2, 3}, {9, 200, 3, 4, 5, 255}).attr("axes", std::vector<int64_t>{1})
      .output<uint8_t>("Y", {2, 1}, {3, 4}).run();
}

TEST(ReduceProdAndNorms, SmallVectors) {
  OpTester("ReduceProd", 17).input<float>("X", {3}, {2, -3, 4}).output<float>("Y", {1}, {-24}).run();
  OpTester("ReduceL1", 17).input<float>("X", {3}, {2, -3, 4}).output<float>("Y", {1}, {9}).run();
  OpTester("ReduceL2", 17).input<float>("X", {2}, {3, -4}).output<float>("Y", {1}, {5}).run();
  OpTester("ReduceSumSquare", 17).input<int64_t>("X", {2}, {3, -4}).output<int64_t>("Y", {1}, {25}).run();
  OpTester("ReduceLogSum", 17).input<float>("X", {3}, {1, 2, 3}).output<float>("Y", {1}, {1.791759469f}).run();
  OpTester("ReduceLogSumExp", 17).input<float>("X", {3}, {1, 2, 3}).output<float>("Y", {1}, {3.407605964f}).run();
}

TEST(ReduceMean, RepeatedAxisFails) {
  OpTester("ReduceMean", 18).input<float>("X", {2, 2}, {1, 2, 3, 4}).input<int64_t>("axes", {2}, {0, -2})
      .output<float>("Y", {1, 1}, {0}).expect_failure("axes lists dimension 0 twice");
}

TEST(ArgMax, SelectLastIndex) {
  OpTester("ArgMax", 13).input<float>("X", {2, 3}, {1, 5, 5, 2, 2, 0}).attr("axis", 1).attr("select_last_index", 1)
      .output<int64_t>("Y", {2, 1}, {2, 1}).run();
  OpTester("ArgMax", 13).input<float>("X", {2, 3}, {1, 5, 5, 2, 2, 0}).attr("axis", 1)
      .output<int64_t>("Y", {2, 1}, {1, 0}).run();
}

TEST(ArgMin, AlongOuterAxisNoKeepdims) {
  OpTester("ArgMin", 13).input<int32_t>("X", {3, 2}, {4, 1, 2, 1, 3, 0}).attr("keepdims", 0)
      .output<int64_t>("Y", {2}, {1, 2}).run();
}

TEST(Softmax, LastAxisAndLogSoftmax) {
  const float l2 = 0.6931471806f, l3 = 1.0986122887f, l6 = 1.7917594692f;
  OpTester("Softmax", 13).input<float>("X", {1, 3}, {0, l2, l3}).output<float>("Y", {1, 3}, {1 / 6.f, 2 / 6.f, 3 / 6.f}).run();
  OpTester("LogSoftmax", 13).input<float>("X", {1, 3}, {0, l2, l3}).output<float>("Y", {1, 3}, {-l6, l2 - l6, l3 - l6}).run();
}

TEST(Softmax, Opset11FlattensAtAxis) {
  // axis 1 of [2, 1, 2]: each sample's two values are one row.
  OpTester("Softmax", 11).input<float>("X", {2, 1, 2}, {0, 0, 1, 1}).output<float>("Y", {2, 1, 2}, {.5f, .5f, .5f, .5f}).run();
  // Along axis 0 of the same input from opset 13.
  OpTester("Softmax", 13).input<float>("X", {2, 2}, {0, 5, 0, 5}).attr("axis", 0)
      .output<float>("Y", {2, 2}, {.5f, .5f, .5f, .5f}).run();
}

TEST(Softmax, MaskedPositionsAreZero) {
  OpTester("Softmax", 13).input<float>("X", {1, 4}, {0, -kInf, 0, -kInf}).output<float>("Y", {1, 4}, {.5f, 0, .5f, 0}).run();
}

TEST(Hardmax, FirstMaximumWins) {
  OpTester("Hardmax", 13).input<float>("X", {2, 3}, {1, 3, 3, 2, 1, 0}).output<float>("Y", {2, 3}, {0, 1, 0, 1, 0, 0}).run();
}

TEST(LayerNormalization, ScaleBiasAndStatistics) {
  OpTester("LayerNormalization", 17).input<float>("X", {1, 3}, {1, 2, 3}).input<float>("Scale", {3}, {1, 2, 0.5f})
      .input<float>("B", {3}, {0, 1, -1}).output<float>("Y", {1, 3}, {-1.224735686f, 1, -0.387632157f})
      .output<float>("Mean", {1, 1}, {2}).output<float>("InvStdDev", {1, 1}, {1.224735686f}).run();
}

TEST(LayerNormalization, ScaleShapeMismatchFails) {
  OpTester("LayerNormalization", 17).input<float>("X", {1, 3}, {1, 2, 3}).input<float>("Scale", {2}, {1, 1})
      .output<float>("Y", {1, 3}, {0, 0, 0}).expect_failure("does not broadcast to the normalized shape [3]");
}

TEST(GroupNormalization, Opset18PerGroupScale) {
  OpTester("GroupNormalization", 18).input<float>("X", {1, 2, 2}, {1, 2, 3, 4}).input<float>("scale", {1}, {2})
      .input<float>("bias", {1}, {1}).attr("num_groups", 1)
      .output<float>("Y", {1, 2, 2}, {-1.68327084f, 0.105576387f, 1.894423613f, 3.68327084f}).run();
}

TEST(MeanVarianceNormalization, DefaultAxes) {
  OpTester("MeanVarianceNormalization", 13).input<float>("X", {1, 2, 1, 2}, {1, 3, 2, 2})
      .output<float>("Y", {1, 2, 1, 2}, {-1, 1, 0, 0}).run();
}

TEST(TopK, TiesKeepLowerIndexFirst) {
  OpTester("TopK", 11).input<float>("X", {4}, {3, 1, 2, 3}).input<int64_t>("K", {1}, {2})
      .output<float>("Values", {2}, {3, 3}).output<int64_t>("Indices", {2}, {0, 3}).run();
  OpTester("TopK", 11).input<int32_t>("X", {2, 3}, {5, 1, 1, 0, 7, 0}).input<int64_t>("K", {1}, {2}).attr("largest", 0)
      .output<int32_t>("Values", {2, 2}, {1, 1, 0, 0}).output<int64_t>("Indices", {2, 2}, {1, 2, 0, 2}).run();
}

TEST(TopK, AttributeKBeforeOpset10AndTooLargeK) {
  OpTester("TopK", 1).input<float>("X", {1, 3}, {1, 9, 4}).attr("k", 1)
      .output<float>("Values", {1, 1}, {9}).output<int64_t>("Indices", {1, 1}, {1}).run();
  OpTester("TopK", 11).input<float>("X", {3}, {1, 9, 4}).input<int64_t>("K", {1}, {4})
      .output<float>("Values", {3}, {0, 0, 0}).output<int64_t>("Indices", {3}, {0, 0, 0})
      .expect_failure("k must be in [0, 3]");
}

TEST(Einsum, MatMulTraceAndDiagonal) {
  OpTester("Einsum", 12).input<float>("A", {2, 2}, {1, 2, 3, 4}).input<float>("B", {2, 2}, {5, 6, 7, 8})
      .attr("equation", "ij,jk->ik").output<float>("Y", {2, 2}, {19, 22, 43, 50}).run();
  OpTester("Einsum", 12).input<int64_t>("A", {2, 2}, {1, 2, 3, 4}).attr("equation", "ii")
      .output<int64_t>("Y", {}, {5}).run();
  OpTester("Einsum", 12).input<double>("A", {2, 2}, {1, 2, 3, 4}).attr("equation", "ii->i")
      .output<double>("Y", {2}, {1, 4}).run();
  OpTester("Einsum", 12).input<float>("A", {2, 3}, {1, 2, 3, 4, 5, 6}).attr("equation", "ij")
      .output<float>("Y", {2, 3}, {1, 2, 3, 4, 5, 6}).run();
}

TEST(Einsum, BadEquationFails) {
  OpTester("Einsum", 12).input<float>("A", {2}, {1, 2}).attr("equation", "i->j")
      .output<float>("Y", {2}, {0, 0}).expect_failure("output label 'j' that no input has");
}

TEST(Resize, NearestHalfPixelAndLinearAlignCorners) {
  OpTester("Resize", 13).input<float>("X", {1, 2}, {1, 2}).omitted_input().input<float>("scales", {2}, {1, 2})
      .output<float>("Y", {1, 4}, {1, 1, 2, 2}).run();
  OpTester("Resize", 13).input<float>("X", {1, 2}, {1, 2}).omitted_input().omitted_input()
      .input<int64_t>("sizes", {2}, {1, 3}).attr("mode", "linear").attr("coordinate_transformation_mode", "align_corners")
      .output<float>("Y", {1, 3}, {1, 1.5f, 2}).run();
}

TEST(Resize, Opset10DownscaleRoundsUp) {
  OpTester("Resize", 10).input<float>("X", {1, 1, 2, 4}, {1, 2, 3, 4, 5, 6, 7, 8})
      .input<float>("scales", {4}, {1, 1, 0.6f, 0.6f}).output<float>("Y", {1, 1, 1, 2}, {1, 3}).run();
}

TEST(Upsample, Opset7ScalesAttribute) {
  OpTester("Upsample", 7).input<float>("X", {1, 2}, {1, 2}).attr("scales", std::vector<float>{1, 2})
      .attr("mode", "linear").output<float>("Y", {1, 4}, {1, 1.5f, 2, 2}).run();
}

TEST(Resize, BothScalesAndSizesFails) {
  OpTester("Resize", 13).input<float>("X", {1, 2}, {1, 2}).omitted_input().input<float>("scales", {2}, {1, 2})
      .input<int64_t>("sizes", {2}, {1, 4}).output<float>("Y", {1, 4}, {0, 0, 0, 0})
      .expect_failure("only one of scales and sizes may be given");
}

}  // namespace kiln::test
