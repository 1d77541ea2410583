// kiln::MatMulChain (made by the optimizer from FusedMatMuls that feed one another, each the
// next's only reader): Y = L_n(... L_1(X)), L_i(H) = act_i(H W_i + b_i), for X [..., K_1] and
// small constant float weights W_i [K_i, N_i] (or [N_i, K_i] where `kiln_weight_nk` says so).
// Inputs X, W_1, b_1, ..., W_n, b_n; `activations` holds each layer's ("", "Relu", "Gelu",
// "GeluTanh").
//
// A small MLP's layers are a few microseconds each, and at 2 threads each layer's own
// parallel region cost more than it split: every layer waited for the slower thread and read
// the half of its input the other core had written (the zoo's 16-row MLP: 18.8 us at 2 threads,
// 21 at 1). Here each thread takes its own rows through every layer, in blocks whose hidden
// values stay in its cache, in one parallel region: 12.7 us. The weights are small enough that
// every core keeps all of them in its L2.
#include <algorithm>
#include <optional>
#include <vector>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"
#include "kiln/ops/math/packed_gemm.h"

namespace kiln {

namespace {

constexpr int64_t kBlockRows = 48;      // whole tiles of 6, 8 and 12 rows
constexpr int kHiddenSlots[2] = {6, 7};  // thread_scratch slots of the hidden blocks

struct Layer {
  const Tensor* weight = nullptr;
  const Tensor* bias = nullptr;
  int64_t k = 0, n = 0;
  bool nk = false;
  GemmEpilogue::Act act = GemmEpilogue::Act::None;
  PackedWeights pack;  // what panels reads
  std::optional<PackedPanels> panels;
  std::vector<float> columns;  // a narrow layer's W as [N, K] for narrow_gemm (else empty)
};

GemmEpilogue::Act parse_act(const std::string& s) {
  using Act = GemmEpilogue::Act;
  if (s.empty()) return Act::None;
  if (s == "Relu") return Act::Relu;
  if (s == "Gelu") return Act::Gelu;
  if (s == "GeluTanh") return Act::GeluTanh;
  fail(ErrorCode::InvalidGraph, "MatMulChain: unknown activation '", s, "'");
}

class MatMulChain : public Kernel {
 public:
  explicit MatMulChain(const KernelInit& init) {
    const ir::Node& node = init.node;
    const size_t count = (node.inputs.size() - 1) / 2;
    const std::vector<std::string> acts = node.attr_strings("activations");
    const std::vector<int64_t> nk = node.attr_ints("kiln_weight_nk", std::vector<int64_t>(count, 0));
    if (count == 0 || node.inputs.size() != 2 * count + 1 || acts.size() != count || nk.size() != count)
      fail(ErrorCode::InvalidGraph, "MatMulChain '", node.name, "' needs X then a weight and a bias per layer, and ",
           "one activation (and kiln_weight_nk) per layer");
    layers_.resize(count);
    for (size_t i = 0; i < count; ++i) {
      Layer& l = layers_[i];
      l.weight = init.constant(int(2 * i + 1)), l.bias = init.constant(int(2 * i + 2));
      l.nk = nk[i] != 0;
      if (!l.weight || l.weight->dtype() != DType::Float32 || l.weight->rank() != 2 || !l.bias ||
          l.bias->dtype() != DType::Float32)
        fail(ErrorCode::InvalidGraph, "MatMulChain '", node.name, "' layer ", i,
             ": needs a constant 2-D float weight and a constant float bias");
      l.k = l.weight->dim(l.nk ? 1 : 0), l.n = l.weight->dim(l.nk ? 0 : 1);
      if (l.k == 0 || l.n == 0)
        fail(ErrorCode::InvalidGraph, "MatMulChain '", node.name, "' layer ", i, ": weight ",
             shape_str(l.weight->shape()), " is empty");
      if (l.bias->size() != l.n)
        fail(ErrorCode::InvalidGraph, "MatMulChain '", node.name, "' layer ", i, ": bias has ", l.bias->size(),
             " values for N=", l.n);
      if (i > 0 && l.k != layers_[i - 1].n)
        fail(ErrorCode::InvalidGraph, "MatMulChain '", node.name, "' layer ", i, " takes K=", l.k, " but layer ", i - 1,
             " gives N=", layers_[i - 1].n);
      l.act = parse_act(acts[i]);
      if (l.n <= kNarrowColumns) {  // a few outputs (a regression or binary head): dot products
        const float* w = l.weight->data<float>();
        l.columns.resize(size_t(l.k * l.n));
        for (int64_t j = 0; j < l.n; ++j)
          for (int64_t q = 0; q < l.k; ++q)
            l.columns[size_t(j * l.k + q)] = l.nk ? w[j * l.k + q] : w[q * l.n + j];
      } else {
        l.panels = PackedPanels::pack(l.pack, l.weight, stored_weight_desc(l.k, l.n, l.nk));
      }
      widest_ = std::max(widest_, l.n);
    }
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::Float32)
      fail(ErrorCode::InvalidArgument, "MatMulChain: X is ", dtype_name(x.dtype()), ", not float");
    if (x.rank() == 0 || x.shape().back() != layers_[0].k)
      fail(ErrorCode::InvalidArgument, "MatMulChain: X ", shape_str(x.shape()), " does not end in K=", layers_[0].k);
    Shape out = x.shape();
    out.back() = layers_.back().n;
    rows_ = shape_size(x.shape()) / layers_[0].k;
    ctx.set_output(0, DType::Float32, out);
  }

  void compute(OpContext& ctx) override {
    const float* x = ctx.input(0).data<float>();
    float* y = ctx.output(0).data<float>();
    if (rows_ == 0) return;
    const int threads = num_threads();
    if (threads > 1 && rows_ >= 4 * threads && !omp_in_parallel()) {
#pragma omp parallel num_threads(threads)
      {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t r0 = rows_ * t / nt, r1 = rows_ * (t + 1) / nt;
        run_rows(x + r0 * layers_[0].k, r1 - r0, y + r0 * layers_.back().n);
      }
      return;
    }
    run_rows(x, rows_, y);  // few rows: each layer's product splits its columns over the team
  }

 private:
  // Rows [0, m) of X through every layer, a block of rows at a time.
  void run_rows(const float* x, int64_t m, float* y) const {
    const int64_t block = std::min(m, kBlockRows);
    float* hidden[2] = {static_cast<float*>(thread_scratch(kHiddenSlots[0], sizeof(float) * size_t(block * widest_))),
                        static_cast<float*>(thread_scratch(kHiddenSlots[1], sizeof(float) * size_t(block * widest_)))};
    for (int64_t r = 0; r < m; r += block) {
      const int64_t rows = std::min(block, m - r);
      const float* in = x + r * layers_[0].k;
      for (size_t i = 0; i < layers_.size(); ++i) {
        const Layer& l = layers_[i];
        float* out = i + 1 == layers_.size() ? y + r * l.n : hidden[i % 2];
        product(l, in, rows, out);
        in = out;
      }
    }
  }

  static void product(const Layer& l, const float* a, int64_t m, float* c) {
    const GemmEpilogue ep{l.bias->data<float>(), l.act};
    if (!l.columns.empty()) return narrow_gemm(a, m, l.columns.data(), l.k, l.n, ep, c);
    if (l.panels) return packed_gemm(a, m, *l.panels, ep, c);
    // No panel layout (a chain read back on a CPU without AVX-512): a vector product per row.
    for (int64_t r = 0; r < m; ++r) gemv(a + r * l.k, l.weight->data<float>(), l.k, l.n, l.nk, ep, c + r * l.n);
  }

  std::vector<Layer> layers_;
  int64_t widest_ = 0;  // the widest layer's N
  int64_t rows_ = 0;
};

const OpRegistration kMatMulChain{"kiln", "MatMulChain", 1, make_kernel<MatMulChain>};

}  // namespace

}  // namespace kiln
