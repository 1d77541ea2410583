// kiln::MatMulChain: Y = act_n(... act_1(X W_1 + b_1) ... W_n + b_n) against a loop in double,
// with rows enough to split over the session's threads and too few, a weight stored [N, K],
// X of rank 1 and 3, last layers of at most 8 outputs (dot products) and of 9 (panels); a K
// that does not fit and an empty weight are errors naming them.
#include <cmath>

#include "op_tester.h"

namespace kiln::test {

namespace {

struct LayerSpec {
  int64_t k, n;
  bool nk;
  const char* act;
};

std::vector<float> reference(const std::vector<float>& x, int64_t rows, const std::vector<LayerSpec>& layers,
                             const std::vector<std::vector<float>>& w, const std::vector<std::vector<float>>& b) {
  std::vector<double> h(x.begin(), x.end());
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerSpec& l = layers[i];
    std::vector<double> out(size_t(rows * l.n));
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = 0; j < l.n; ++j) {
        double v = b[i][size_t(j)];
        for (int64_t q = 0; q < l.k; ++q) v += h[size_t(r * l.k + q)] * w[i][size_t(l.nk ? j * l.k + q : q * l.n + j)];
        if (std::string(l.act) == "Relu") v = std::max(v, 0.0);
        if (std::string(l.act) == "Gelu") v = 0.5 * v * std::erfc(-v / std::sqrt(2.0));
        out[size_t(r * l.n + j)] = v;
      }
    h = std::move(out);
  }
  return std::vector<float>(h.begin(), h.end());
}

void check(Shape x_shape,
           const std::vector<LayerSpec>& layers = {{20, 48, false, "Relu"}, {48, 33, true, "Gelu"}, {33, 7, false, ""}}) {
  const int64_t rows = shape_size(x_shape) / 20;
  SCOPED_TRACE(testing::Message() << "X " << shape_str(x_shape));
  const std::vector<float> x = uniform_values(shape_size(x_shape), 1);
  std::vector<std::vector<float>> w, b;
  OpTester t("MatMulChain", 1, "kiln");
  t.input<float>("X", x_shape, x);
  std::vector<std::string> acts;
  std::vector<int64_t> nk;
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerSpec& l = layers[i];
    w.push_back(uniform_values(l.k * l.n, uint32_t(10 + i), 0.5f));
    b.push_back(uniform_values(l.n, uint32_t(20 + i)));
    t.constant<float>(std::string("W").append(std::to_string(i)), l.nk ? Shape{l.n, l.k} : Shape{l.k, l.n}, w.back());
    t.constant<float>(std::string("B").append(std::to_string(i)), {l.n}, b.back());
    acts.push_back(l.act);
    nk.push_back(l.nk);
  }
  Shape y_shape = x_shape;
  y_shape.back() = layers.back().n;
  t.attr("activations", acts).attr("kiln_weight_nk", nk).output<float>("Y", y_shape, reference(x, rows, layers, w, b));
  t.tolerance(1e-5, 1e-5).run();
}

}  // namespace

TEST(MatMulChain, MatchesLoopsForAnyRowCount) {
  for (Shape s : {Shape{20}, Shape{3, 20}, Shape{2, 4, 20}, Shape{5, 21, 20}, Shape{1, 130, 20}}) check(s);
}

TEST(MatMulChain, NarrowLastLayers) {
  for (int64_t n : {1, 4, 8, 9})
    for (bool nk : {false, true}) {
      SCOPED_TRACE(testing::Message() << "N " << n << (nk ? " stored [N, K]" : ""));
      for (Shape s : {Shape{20}, Shape{7, 20}, Shape{2, 33, 20}})
        check(s, {{20, 48, false, "Relu"}, {48, 70, true, ""}, {70, n, nk, nk ? "Gelu" : "Relu"}});
    }
}

TEST(MatMulChain, RefusesAnXThatDoesNotEndInK) {
  OpTester("MatMulChain", 1, "kiln")
      .input<float>("X", {2, 3}, uniform_values(6, 1))
      .constant<float>("W", {4, 2}, uniform_values(8, 2))
      .constant<float>("B", {2}, {0.f, 0.f})
      .attr("activations", std::vector<std::string>{""})
      .output<float>("Y", {2, 2}, {0, 0, 0, 0})
      .expect_failure("does not end in K=4");
}

TEST(MatMulChain, RefusesAnEmptyWeight) {
  OpTester("MatMulChain", 1, "kiln")
      .input<float>("X", {2, 0}, {})
      .constant<float>("W", {0, 2}, {})
      .constant<float>("B", {2}, {0.f, 0.f})
      .attr("activations", std::vector<std::string>{""})
      .output<float>("Y", {2, 2}, {0, 0, 0, 0})
      .expect_failure("weight [0,2] is empty");
}

}  // namespace kiln::test
