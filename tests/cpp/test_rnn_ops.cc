// Hand-derived RNN, GRU and LSTM cases small enough to follow on paper.
#include "op_tester.h"

namespace kiln::test {

// h1 = relu(2*1 + 0.5*0 + 0.25 + 0.25) = 2.5, h2 = relu(2*0 + 0.5*2.5 + 0.5) = 1.75.
TEST(RNN, ReluForwardWithConstantWeights) {
  OpTester("RNN", 14).input<float>("X", {2, 1, 1}, {1, 0}).constant<float>("W", {1, 1, 1}, {2})
      .constant<float>("R", {1, 1, 1}, {0.5f}).input<float>("B", {1, 2}, {0.25f, 0.25f})
      .attr("hidden_size", 1).attr("activations", std::vector<std::string>{"Relu"})
      .output<float>("Y", {2, 1, 1, 1}, {2.5f, 1.75f}).output<float>("Y_h", {1, 1, 1}, {1.75f}).run();
}

// Reverse reads t=1 first: h = relu(0.5) = 0.5, then h = relu(2 + 0.25 + 0.5) = 2.75.
TEST(RNN, ReluReverse) {
  OpTester("RNN", 14).input<float>("X", {2, 1, 1}, {1, 0}).input<float>("W", {1, 1, 1}, {2})
      .input<float>("R", {1, 1, 1}, {0.5f}).input<float>("B", {1, 2}, {0.25f, 0.25f})
      .attr("hidden_size", 1).attr("direction", "reverse").attr("activations", std::vector<std::string>{"Relu"})
      .output<float>("Y", {2, 1, 1, 1}, {2.75f, 0.5f}).output<float>("Y_h", {1, 1, 1}, {2.75f}).run();
}

// Zero weights: z = r = 0.5 and the candidate is tanh(0) = 0, so each step halves H.
TEST(GRU, ZeroWeightsHalveTheState) {
  OpTester("GRU", 14).input<float>("X", {2, 1, 1}, {3, -4}).input<float>("W", {1, 3, 1}, {0, 0, 0})
      .input<float>("R", {1, 3, 1}, {0, 0, 0}).omitted_input().omitted_input()
      .input<float>("initial_h", {1, 1, 1}, {1}).attr("hidden_size", 1)
      .output<float>("Y", {2, 1, 1, 1}, {0.5f, 0.25f}).output<float>("Y_h", {1, 1, 1}, {0.25f}).run();
}

// Zero weights: i = f = o = 0.5 and c~ = 0, so C halves and H = 0.5 * tanh(C).
TEST(LSTM, ZeroWeightsHalveTheCell) {
  OpTester("LSTM", 14).input<float>("X", {2, 1, 1}, {1, 2}).input<float>("W", {1, 4, 1}, {0, 0, 0, 0})
      .input<float>("R", {1, 4, 1}, {0, 0, 0, 0}).omitted_input().omitted_input().omitted_input()
      .input<float>("initial_c", {1, 1, 1}, {2}).attr("hidden_size", 1)
      .output<float>("Y", {2, 1, 1, 1}, {0.5f * std::tanh(1.0f), 0.5f * std::tanh(0.5f)})
      .omitted_output().output<float>("Y_c", {1, 1, 1}, {0.5f})
      .tolerance(1e-5, 1e-6).run();
}

TEST(LSTM, WrongRecurrentShapeNamesExpectedAndGot) {
  OpTester("LSTM", 14).input<float>("X", {2, 1, 1}, {1, 2}).input<float>("W", {1, 4, 1}, {0, 0, 0, 0})
      .input<float>("R", {1, 4, 2}, {0, 0, 0, 0, 0, 0, 0, 0}).attr("hidden_size", 1)
      .output<float>("Y", {2, 1, 1, 1}, {0, 0})
      .expect_failure("R must have shape [1,4,1] ([num_directions, 4*hidden_size, hidden_size]), got [1,4,2]");
}

}  // namespace kiln::test
