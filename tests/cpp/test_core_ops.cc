#include "op_tester.h"

namespace kiln::test {

TEST(Add, SameShape) {
  OpTester("Add").input<float>("A", {2, 2}, {1, 2, 3, 4}).input<float>("B", {2, 2}, {10, 20, 30, 40})
      .output<float>("C", {2, 2}, {11, 22, 33, 44}).run();
}

TEST(Add, BroadcastRowAndColumn) {
  OpTester("Add").input<int64_t>("A", {2, 1}, {1, 2}).input<int64_t>("B", {3}, {10, 20, 30})
      .output<int64_t>("C", {2, 3}, {11, 21, 31, 12, 22, 32}).run();
}

TEST(Add, EmptyTensor) {
  OpTester("Add").input<float>("A", {0, 3}, {}).input<float>("B", {3}, {1, 2, 3}).output<float>("C", {0, 3}, {}).run();
}

TEST(Add, IncompatibleShapesNameBoth) {
  OpTester("Add").input<float>("A", {2}, {1, 2}).input<float>("B", {3}, {1, 2, 3})
      .output<float>("C", {3}, {0, 0, 0}).expect_failure("shapes [2] and [3] cannot be broadcast");
}

TEST(Relu, Floats) {
  OpTester("Relu").input<float>("X", {4}, {-1, 0, 2, -3}).output<float>("Y", {4}, {0, 0, 2, 0}).run();
}

TEST(MatMul, TwoByTwoWithConstantWeight) {
  OpTester("MatMul").input<float>("A", {2, 2}, {1, 2, 3, 4}).constant<float>("B", {2, 2}, {5, 6, 7, 8})
      .output<float>("C", {2, 2}, {19, 22, 43, 50}).run();
}

TEST(MatMul, VectorTimesBatchedMatrix) {
  OpTester("MatMul").input<float>("A", {2}, {1, 2}).input<float>("B", {2, 2, 1}, {1, 2, 3, 4})
      .output<float>("C", {2, 1}, {5, 11}).run();
}

TEST(MatMul, Int64Reference) {
  OpTester("MatMul").input<int64_t>("A", {1, 3}, {1, 2, 3}).input<int64_t>("B", {3, 1}, {4, 5, 6})
      .output<int64_t>("C", {1, 1}, {32}).run();
}

TEST(MatMul, MismatchedK) {
  OpTester("MatMul").input<float>("A", {2, 3}, {1, 2, 3, 4, 5, 6}).input<float>("B", {2, 2}, {1, 2, 3, 4})
      .output<float>("C", {2, 2}, {0, 0, 0, 0}).expect_failure("do not match");
}

TEST(Session, UnsupportedOpsListedTogether) {
  OpTester("NoSuchOp").input<float>("X", {1}, {1}).output<float>("Y", {1}, {1}).expect_failure("NoSuchOp (opset 17)");
}

}  // namespace kiln::test
