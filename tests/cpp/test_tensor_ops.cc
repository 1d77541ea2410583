// Data-movement ops on small hand-derived cases: shapes, opset variants, element types
// (strings, bool, float16 bits) and the errors bad indices and axes must give.
#include "op_tester.h"

namespace kiln::test {

using S = std::string;

TEST(Reshape, CopyZeroInferMinusOneWithConstantShape) {
  OpTester("Reshape").input<float>("X", {2, 3}, {1, 2, 3, 4, 5, 6}).constant<int64_t>("S", {2}, {0, -1})
      .output<float>("Y", {2, 3}, {1, 2, 3, 4, 5, 6}).run();
  OpTester("Reshape", 14).input<int8_t>("X", {0, 2}, {}).constant<int64_t>("S", {2}, {2, 0}).attr("allowzero", 1)
      .output<int8_t>("Y", {2, 0}, {}).run();
  OpTester("Reshape").input<float>("X", {2, 3}, {1, 2, 3, 4, 5, 6}).input<int64_t>("S", {1}, {4})
      .output<float>("Y", {4}, {0, 0, 0, 0}).expect_failure("cannot reshape input [2,3] (6 elements) to [4]");
}

TEST(Flatten, StringsAndAxisZero) {
  OpTester("Flatten").input<S>("X", {2, 1, 2}, {"a", "b", "c", "d"}).attr("axis", 0)
      .output<S>("Y", {1, 4}, {"a", "b", "c", "d"}).run();
  OpTester("Flatten", 13).input<float>("X", {2, 1, 2}, {1, 2, 3, 4}).attr("axis", -1)
      .output<float>("Y", {2, 2}, {1, 2, 3, 4}).run();
}

TEST(Squeeze, AttributeBefore13InputFrom13) {
  OpTester("Squeeze", 11).input<bool>("X", {1, 2, 1}, {true, false}).attr("axes", std::vector<int64_t>{-1})
      .output<bool>("Y", {1, 2}, {true, false}).run();
  OpTester("Squeeze", 13).input<bool>("X", {1, 2, 1}, {true, false}).constant<int64_t>("A", {1}, {0})
      .output<bool>("Y", {2, 1}, {true, false}).run();
  OpTester("Squeeze", 13).input<float>("X", {1, 2}, {1, 2}).constant<int64_t>("A", {1}, {1})
      .output<float>("Y", {1}, {0}).expect_failure("cannot squeeze axis 1");
}

TEST(Unsqueeze, AttributeBefore13InputFrom13) {
  OpTester("Unsqueeze", 11).input<int64_t>("X", {2}, {7, 8}).attr("axes", std::vector<int64_t>{0, 2})
      .output<int64_t>("Y", {1, 2, 1}, {7, 8}).run();
  OpTester("Unsqueeze", 13).input<int64_t>("X", {2}, {7, 8}).input<int64_t>("A", {1}, {-1})
      .output<int64_t>("Y", {2, 1}, {7, 8}).run();
}

TEST(Transpose, DefaultPermAndStrings) {
  OpTester("Transpose").input<float>("X", {2, 3}, {1, 2, 3, 4, 5, 6}).output<float>("Y", {3, 2}, {1, 4, 2, 5, 3, 6}).run();
  OpTester("Transpose").input<S>("X", {2, 1, 2}, {"a", "b", "c", "d"}).attr("perm", std::vector<int64_t>{2, 1, 0})
      .output<S>("Y", {2, 1, 2}, {"a", "c", "b", "d"}).run();
  OpTester("Transpose").input<float>("X", {2}, {1, 2}).attr("perm", std::vector<int64_t>{1})
      .output<float>("Y", {2}, {1, 2}).expect_failure("perm entry 1 is out of range");
}

TEST(Transpose, MovingOnlyDimsOfSizeOneKeepsTheOrder) {
  // [1, 3, 2] -> [3, 1, 2] and [2, 1, 3] -> [1, 2, 3]: the same elements in the same order (a view)
  OpTester("Transpose").input<float>("X", {1, 3, 2}, {1, 2, 3, 4, 5, 6}).attr("perm", std::vector<int64_t>{1, 0, 2})
      .output<float>("Y", {3, 1, 2}, {1, 2, 3, 4, 5, 6}).run();
  OpTester("Transpose").input<float>("X", {2, 1, 3}, {1, 2, 3, 4, 5, 6}).attr("perm", std::vector<int64_t>{1, 0, 2})
      .output<float>("Y", {1, 2, 3}, {1, 2, 3, 4, 5, 6}).run();
  // the two dims of size > 1 swap: a copy
  OpTester("Transpose").input<float>("X", {3, 1, 2}, {1, 2, 3, 4, 5, 6}).attr("perm", std::vector<int64_t>{2, 1, 0})
      .output<float>("Y", {2, 1, 3}, {1, 3, 5, 2, 4, 6}).run();
}

TEST(DepthToSpace, DcrAndCrd) {
  // [1, 4, 1, 1] channels c0..c3 -> a 2x2 block; CRD reads the channels in the same order here.
  OpTester("DepthToSpace").input<float>("X", {1, 4, 1, 1}, {0, 1, 2, 3}).attr("blocksize", 2)
      .output<float>("Y", {1, 1, 2, 2}, {0, 1, 2, 3}).run();
  // Two output channels: DCR interleaves them, CRD keeps each one's four values together.
  std::vector<float> x{0, 1, 2, 3, 4, 5, 6, 7};
  OpTester("DepthToSpace").input<float>("X", {1, 8, 1, 1}, x).attr("blocksize", 2).attr("mode", "DCR")
      .output<float>("Y", {1, 2, 2, 2}, {0, 2, 4, 6, 1, 3, 5, 7}).run();
  OpTester("DepthToSpace").input<float>("X", {1, 8, 1, 1}, x).attr("blocksize", 2).attr("mode", "CRD")
      .output<float>("Y", {1, 2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7}).run();
}

TEST(SpaceToDepth, TwoByTwo) {
  OpTester("SpaceToDepth").input<float>("X", {1, 1, 2, 2}, {1, 2, 3, 4}).attr("blocksize", 2)
      .output<float>("Y", {1, 4, 1, 1}, {1, 2, 3, 4}).run();
}

TEST(Concat, NegativeAxisEmptyInputStrings) {
  OpTester("Concat").input<S>("A", {1, 2}, {"a", "b"}).input<S>("E", {1, 0}, {}).input<S>("B", {1, 1}, {"c"})
      .attr("axis", -1).output<S>("Y", {1, 3}, {"a", "b", "c"}).run();
  OpTester("Concat").input<float>("A", {1}, {1}).input<int64_t>("B", {1}, {2}).attr("axis", 0)
      .output<float>("Y", {2}, {0, 0}).expect_failure("input 1 is int64 but input 0 is float");
}

TEST(Split, AttributeInputAndNumOutputs) {
  OpTester("Split", 11).input<int32_t>("X", {5}, {1, 2, 3, 4, 5}).attr("split", std::vector<int64_t>{2, 3})
      .output<int32_t>("A", {2}, {1, 2}).output<int32_t>("B", {3}, {3, 4, 5}).run();
  OpTester("Split", 13).input<int32_t>("X", {2, 2}, {1, 2, 3, 4}).constant<int64_t>("S", {2}, {1, 1}).attr("axis", 1)
      .output<int32_t>("A", {2, 1}, {1, 3}).output<int32_t>("B", {2, 1}, {2, 4}).run();
  OpTester("Split", 18).input<int32_t>("X", {5}, {1, 2, 3, 4, 5}).attr("num_outputs", 2)
      .output<int32_t>("A", {3}, {1, 2, 3}).output<int32_t>("B", {2}, {4, 5}).run();
}

TEST(Slice, NegativeStepAndClamping) {
  OpTester("Slice").input<float>("X", {5}, {0, 1, 2, 3, 4}).constant<int64_t>("S", {1}, {100})
      .constant<int64_t>("E", {1}, {-100}).constant<int64_t>("A", {1}, {0}).constant<int64_t>("P", {1}, {-2})
      .output<float>("Y", {3}, {4, 2, 0}).run();
  OpTester("Slice", 9).input<S>("X", {2, 2}, {"a", "b", "c", "d"}).attr("starts", std::vector<int64_t>{1})
      .attr("ends", std::vector<int64_t>{2}).attr("axes", std::vector<int64_t>{1})
      .output<S>("Y", {2, 1}, {"b", "d"}).run();
}

TEST(Gather, NegativeIndicesAndOutOfRange) {
  OpTester("Gather").input<S>("X", {3}, {"a", "b", "c"}).input<int32_t>("I", {2, 1}, {-1, 0})
      .output<S>("Y", {2, 1}, {"c", "a"}).run();
  OpTester("Gather").input<float>("X", {2, 2}, {1, 2, 3, 4}).input<int64_t>("I", {}, {1}).attr("axis", 1)
      .output<float>("Y", {2}, {2, 4}).run();
  OpTester("Gather").input<float>("X", {2, 2}, {1, 2, 3, 4}).input<int64_t>("I", {1}, {2})
      .output<float>("Y", {1, 2}, {0, 0}).expect_failure("index 2 is out of range: expected [-2, 1]");
}

TEST(GatherElements, Axis1) {
  OpTester("GatherElements").input<int64_t>("X", {2, 2}, {1, 2, 3, 4}).input<int64_t>("I", {2, 2}, {0, 0, 1, 0})
      .attr("axis", 1).output<int64_t>("Y", {2, 2}, {1, 1, 4, 3}).run();
  OpTester("GatherElements").input<int64_t>("X", {2, 2}, {1, 2, 3, 4}).input<int64_t>("I", {1, 2}, {0, -3})
      .output<int64_t>("Y", {1, 2}, {0, 0}).expect_failure("index -3 is out of range");
}

TEST(GatherND, BatchDims) {
  // onnx's gathernd example 5: batch_dims=1.
  OpTester("GatherND", 12).input<int32_t>("X", {2, 2, 2}, {0, 1, 2, 3, 4, 5, 6, 7})
      .input<int64_t>("I", {2, 1}, {1, 0}).attr("batch_dims", 1)
      .output<int32_t>("Y", {2, 2}, {2, 3, 4, 5}).run();
  OpTester("GatherND").input<S>("X", {2, 2}, {"a", "b", "c", "d"}).input<int64_t>("I", {2, 2}, {0, 0, 1, 1})
      .output<S>("Y", {2}, {"a", "d"}).run();
}

TEST(ScatterND, ReplaceAndAdd) {
  OpTester("ScatterND").input<float>("X", {4}, {1, 2, 3, 4}).input<int64_t>("I", {2, 1}, {1, -1})
      .input<float>("U", {2}, {10, 20}).output<float>("Y", {4}, {1, 10, 3, 20}).run();
  OpTester("ScatterND", 16).input<float>("X", {4}, {1, 2, 3, 4}).input<int64_t>("I", {2, 1}, {1, 1})
      .input<float>("U", {2}, {10, 20}).attr("reduction", "add").output<float>("Y", {4}, {1, 32, 3, 4}).run();
  OpTester("ScatterND").input<float>("X", {4}, {1, 2, 3, 4}).input<int64_t>("I", {1, 1}, {4})
      .input<float>("U", {1}, {10}).output<float>("Y", {4}, {0, 0, 0, 0}).expect_failure("index 4 is out of range");
}

TEST(ScatterElements, ReductionsAndDeprecatedScatter) {
  OpTester("ScatterElements", 18).input<int32_t>("X", {1, 3}, {1, 2, 3}).input<int64_t>("I", {1, 2}, {1, 1})
      .input<int32_t>("U", {1, 2}, {5, 7}).attr("axis", 1).attr("reduction", "max")
      .output<int32_t>("Y", {1, 3}, {1, 7, 3}).run();
  OpTester("ScatterElements", 16).input<int32_t>("X", {1, 3}, {1, 2, 3}).input<int64_t>("I", {1, 2}, {2, -1})
      .input<int32_t>("U", {1, 2}, {5, 7}).attr("axis", 1).attr("reduction", "mul")
      .output<int32_t>("Y", {1, 3}, {1, 2, 105}).run();
  OpTester("Scatter", 10).input<S>("X", {3}, {"a", "b", "c"}).input<int32_t>("I", {1}, {0})
      .input<S>("U", {1}, {"z"}).output<S>("Y", {3}, {"z", "b", "c"}).run();
}

TEST(Shape, StartEnd) {
  OpTester("Shape", 15).input<float>("X", {2, 3, 4}, std::vector<float>(24, 0.f)).attr("start", -2)
      .output<int64_t>("Y", {2}, {3, 4}).run();
  OpTester("Size").input<S>("X", {2, 2}, {"a", "b", "c", "d"}).output<int64_t>("Y", {}, {4}).run();
}

TEST(ConstantOfShape, DefaultFloatZeroAndIntValue) {
  OpTester("ConstantOfShape", 9).input<int64_t>("S", {2}, {1, 2}).output<float>("Y", {1, 2}, {0, 0}).run();
  OpTester("ConstantOfShape", 9).input<int64_t>("S", {1}, {3}).attr("value", make_tensor<int32_t>({1}, {7}))
      .output<int32_t>("Y", {3}, {7, 7, 7}).run();
}

TEST(Expand, BothDirections) {
  OpTester("Expand").input<int8_t>("X", {2, 1}, {1, 2}).constant<int64_t>("S", {2}, {1, 3})
      .output<int8_t>("Y", {2, 3}, {1, 1, 1, 2, 2, 2}).run();
}

TEST(Tile, Repeats) {
  OpTester("Tile").input<S>("X", {1, 2}, {"a", "b"}).constant<int64_t>("R", {2}, {2, 2})
      .output<S>("Y", {2, 4}, {"a", "b", "a", "b", "a", "b", "a", "b"}).run();
}

TEST(Range, IntegerAndFloat) {
  OpTester("Range").input<int32_t>("S", {}, {10}).input<int32_t>("L", {}, {4}).input<int32_t>("D", {}, {-3})
      .output<int32_t>("Y", {2}, {10, 7}).run();
  OpTester("Range").input<float>("S", {}, {0}).input<float>("L", {}, {1}).input<float>("D", {}, {0.25f})
      .output<float>("Y", {4}, {0, 0.25f, 0.5f, 0.75f}).run();
}

TEST(Dropout, InferenceMaskAndTrainingRefused) {
  OpTester("Dropout", 13).input<float>("X", {2}, {1, 2}).output<float>("Y", {2}, {1, 2})
      .output<bool>("M", {2}, {true, true}).run();
  OpTester("Dropout", 13).input<float>("X", {2}, {1, 2}).input<float>("R", {}, {0.1f}).input<bool>("T", {}, {true})
      .output<float>("Y", {2}, {1, 2}).expect_failure("training_mode=true is not supported");
}

TEST(Pad, ReflectEdgeWrapConstant) {
  std::vector<float> x{1, 2, 3};
  OpTester("Pad", 19).input<float>("X", {3}, x).constant<int64_t>("P", {2}, {2, 2}).attr("mode", "reflect")
      .output<float>("Y", {7}, {3, 2, 1, 2, 3, 2, 1}).run();
  OpTester("Pad", 19).input<float>("X", {3}, x).constant<int64_t>("P", {2}, {2, 1}).attr("mode", "edge")
      .output<float>("Y", {6}, {1, 1, 1, 2, 3, 3}).run();
  OpTester("Pad", 19).input<float>("X", {3}, x).constant<int64_t>("P", {2}, {4, 1}).attr("mode", "wrap")
      .output<float>("Y", {8}, {3, 1, 2, 3, 1, 2, 3, 1}).run();
  OpTester("Pad", 11).input<float>("X", {3}, x).constant<int64_t>("P", {2}, {-1, 1}).input<float>("V", {}, {9})
      .output<float>("Y", {3}, {2, 3, 9}).run();
  OpTester("Pad", 2).input<float>("X", {1, 2}, {1, 2}).attr("pads", std::vector<int64_t>{0, 1, 0, 0})
      .attr("value", 5.0f).output<float>("Y", {1, 3}, {5, 1, 2}).run();
}

TEST(Trilu, UpperLowerWithK) {
  std::vector<int64_t> x{1, 2, 3, 4, 5, 6, 7, 8, 9};
  OpTester("Trilu", 14).input<int64_t>("X", {3, 3}, x).output<int64_t>("Y", {3, 3}, {1, 2, 3, 0, 5, 6, 0, 0, 9}).run();
  OpTester("Trilu", 14).input<int64_t>("X", {3, 3}, x).input<int64_t>("K", {}, {-1}).attr("upper", 0)
      .output<int64_t>("Y", {3, 3}, {0, 0, 0, 4, 0, 0, 7, 8, 0}).run();
}

TEST(CumSum, ExclusiveReverse) {
  OpTester("CumSum", 14).input<double>("X", {4}, {1, 2, 3, 4}).input<int32_t>("A", {}, {0})
      .output<double>("Y", {4}, {1, 3, 6, 10}).run();
  OpTester("CumSum", 14).input<double>("X", {4}, {1, 2, 3, 4}).input<int32_t>("A", {}, {0}).attr("exclusive", 1)
      .attr("reverse", 1).output<double>("Y", {4}, {9, 7, 4, 0}).run();
}

TEST(OneHot, AxisZeroStringsValues) {
  OpTester("OneHot", 11).input<int64_t>("I", {2}, {1, -1}).input<int64_t>("D", {}, {3})
      .input<S>("V", {2}, {"off", "on"}).attr("axis", 0)
      .output<S>("Y", {3, 2}, {"off", "off", "on", "off", "off", "on"}).run();
}

TEST(NonZero, CoordinatesRowMajor) {
  OpTester("NonZero").input<int32_t>("X", {2, 2}, {1, 0, 0, 3}).output<int64_t>("Y", {2, 2}, {0, 1, 0, 1}).run();
  OpTester("NonZero").input<S>("X", {3}, {"", "x", ""}).output<int64_t>("Y", {1, 1}, {1}).run();
}

TEST(EyeLike, OffDiagonalAndDtype) {
  OpTester("EyeLike").input<float>("X", {2, 3}, std::vector<float>(6, 5.f)).attr("k", 1).attr("dtype", int64_t(7))
      .output<int64_t>("Y", {2, 3}, {0, 1, 0, 0, 0, 1}).run();
}

TEST(Compress, AxisAndFlattened) {
  OpTester("Compress").input<float>("X", {2, 2}, {1, 2, 3, 4}).input<bool>("C", {2}, {false, true}).attr("axis", 1)
      .output<float>("Y", {2, 1}, {2, 4}).run();
  OpTester("Compress").input<float>("X", {2, 2}, {1, 2, 3, 4}).input<bool>("C", {3}, {true, false, true})
      .output<float>("Y", {2}, {1, 3}).run();
}

TEST(ReverseSequence, TimeMajor) {
  // time_axis 0, batch_axis 1: batch 0 reverses 3 steps, batch 1 reverses 1 (no change).
  OpTester("ReverseSequence", 10).input<int32_t>("X", {3, 2}, {1, 10, 2, 20, 3, 30}).input<int64_t>("L", {2}, {3, 1})
      .output<int32_t>("Y", {3, 2}, {3, 10, 2, 20, 1, 30}).run();
  OpTester("ReverseSequence", 10).input<int32_t>("X", {3, 2}, {1, 10, 2, 20, 3, 30}).input<int64_t>("L", {2}, {4, 1})
      .output<int32_t>("Y", {3, 2}, {0, 0, 0, 0, 0, 0}).expect_failure("sequence_lens[0] = 4 is out of range");
}

TEST(Unique, AllOutputsSortedAndUnsorted) {
  OpTester("Unique", 11).input<float>("X", {6}, {2, 1, 1, 3, 4, 3})
      .output<float>("Y", {4}, {1, 2, 3, 4}).output<int64_t>("I", {4}, {1, 0, 3, 4})
      .output<int64_t>("V", {6}, {1, 0, 0, 2, 3, 2}).output<int64_t>("C", {4}, {2, 1, 2, 1}).run();
  OpTester("Unique", 11).input<float>("X", {6}, {2, 1, 1, 3, 4, 3}).attr("sorted", 0)
      .output<float>("Y", {4}, {2, 1, 3, 4}).omitted_output().omitted_output()
      .output<int64_t>("C", {4}, {1, 2, 2, 1}).run();
  OpTester("Unique", 11).input<int32_t>("X", {3, 2}, {1, 2, 0, 1, 1, 2}).attr("axis", 0)
      .output<int32_t>("Y", {2, 2}, {0, 1, 1, 2}).run();
}

TEST(Identity, PassesFloat16Bits) {
  OpTester("Identity").input<Float16>("X", {2}, {Float16{0x3c00}, Float16{0x7e00}})
      .output<Float16>("Y", {2}, {Float16{0x3c00}, Float16{0x7e00}}).run();
}

TEST(TensorOps, BFloat16MovesAndSums) {
  auto bf = [](float f) { return BFloat16{float_to_bfloat16(f)}; };
  OpTester("Transpose").input<BFloat16>("X", {2, 2}, {bf(1), bf(2), bf(3), bf(4)})
      .output<BFloat16>("Y", {2, 2}, {bf(1), bf(3), bf(2), bf(4)}).run();
  OpTester("CumSum", 14).input<BFloat16>("X", {3}, {bf(1), bf(2), bf(3)}).input<int64_t>("A", {}, {0})
      .output<BFloat16>("Y", {3}, {bf(1), bf(3), bf(6)}).run();
  OpTester("ScatterElements", 18).input<BFloat16>("X", {2}, {bf(1), bf(2)}).input<int64_t>("I", {2}, {0, 0})
      .input<BFloat16>("U", {2}, {bf(5), bf(-7)}).attr("reduction", "min")
      .output<BFloat16>("Y", {2}, {bf(-7), bf(2)}).run();
  OpTester("EyeLike").input<BFloat16>("X", {2, 2}, {bf(9), bf(9), bf(9), bf(9)})
      .output<BFloat16>("Y", {2, 2}, {bf(1), bf(0), bf(0), bf(1)}).run();
}

TEST(TensorOps, Float16NonZeroTreatsNegativeZeroAsZero) {
  OpTester("NonZero").input<Float16>("X", {3}, {Float16{0x8000}, Float16{0x3c00}, Float16{0x0000}})
      .output<int64_t>("Y", {1, 1}, {1}).run();
}

}  // namespace kiln::test
