// Gemm: Y = alpha * A' * B' + beta * C, with A' and B' optionally transposed and C broadcast
// to [M, N] (opsets 1-13; C optional from 11). float32 runs as a 2-D oneDNN matmul whose
// weights, when B is an initializer, are packed once; a row C rides as the bias, any other C
// is copied into Y and added by the `sum` post-op. float64 runs a plain loop.
#include <cstring>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"
#include "kiln/ops/common/dnnl.h"

namespace kiln {
namespace {

class Gemm : public Kernel {
 public:
  explicit Gemm(const KernelInit& init)
      : weight_(init.constant(1)),
        alpha_(init.node.attr_float("alpha", 1.f)),
        beta_(init.node.attr_float("beta", 1.f)),
        trans_a_(init.node.attr_int("transA", 0) != 0),
        trans_b_(init.node.attr_int("transB", 0) != 0) {}

  void prepare(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    if (a.dtype() != b.dtype())
      fail(ErrorCode::InvalidArgument, "A is ", dtype_name(a.dtype()), " but B is ", dtype_name(b.dtype()));
    if (a.dtype() != DType::Float32 && a.dtype() != DType::Float64)
      fail(ErrorCode::NotImplemented, "element type ", dtype_name(a.dtype()), " is not supported (float and double are)");
    if (a.rank() != 2 || b.rank() != 2)
      fail(ErrorCode::InvalidArgument, "A and B must be 2-D, got A ", shape_str(a.shape()), " and B ",
           shape_str(b.shape()));
    m_ = trans_a_ ? a.dim(1) : a.dim(0);
    k_ = trans_a_ ? a.dim(0) : a.dim(1);
    n_ = trans_b_ ? b.dim(0) : b.dim(1);
    const int64_t kb = trans_b_ ? b.dim(1) : b.dim(0);
    if (kb != k_)
      fail(ErrorCode::InvalidArgument, "A ", shape_str(a.shape()), (trans_a_ ? " (transposed)" : ""), " and B ",
           shape_str(b.shape()), (trans_b_ ? " (transposed)" : ""), " do not match: A has K=", k_, ", B has K=", kb);
    has_c_ = ctx.has_input(2) && beta_ != 0.f;
    if (ctx.has_input(2)) {
      const Tensor& c = ctx.input(2);
      if (c.dtype() != a.dtype())
        fail(ErrorCode::InvalidArgument, "C is ", dtype_name(c.dtype()), " but A is ", dtype_name(a.dtype()));
      Shape cs = c.shape();
      bool ok = cs.size() <= 2;
      while (ok && cs.size() < 2) cs.insert(cs.begin(), 1);
      ok = ok && (cs[0] == 1 || cs[0] == m_) && (cs[1] == 1 || cs[1] == n_);
      if (!ok)
        fail(ErrorCode::InvalidArgument, "C ", shape_str(c.shape()), " cannot be broadcast to the output [", m_, ",", n_,
             "]");
      c_rows_ = cs[0], c_cols_ = cs[1];
    }
    ctx.set_output(0, a.dtype(), {m_, n_});
    use_dnnl_ = a.dtype() == DType::Float32 && m_ > 0 && n_ > 0 && k_ > 0 && alpha_ != 0.f;
    if (use_dnnl_) prepare_dnnl();
  }

  void compute(OpContext& ctx) override {
    Tensor& y = ctx.output(0);
    if (y.size() == 0) return;
    if (!use_dnnl_) {
      dispatch(TypeList<float, double>{}, y.dtype(), "Gemm", [&]<typename T>() { reference<T>(ctx, y); });
      return;
    }
    auto& stream = dnnl_stream();
    std::unordered_map<int, dnnl::memory> args;
    args[DNNL_ARG_SRC] = wrap(a_md_, ctx.input(0).raw());
    args[DNNL_ARG_WEIGHTS] = packed_ ? packed_.memory() : wrap(b_md_, ctx.input(1).raw());
    args[DNNL_ARG_DST] = wrap(y_md_, y.raw());
    if (c_as_bias_) {
      const float* c = ctx.input(2).data<float>();
      if (bias_scale_ != 1.f) {  // oneDNN scales (AB + bias) by alpha: pass beta * C / alpha
        for (int64_t j = 0; j < n_; ++j) bias_[size_t(j)] = bias_scale_ * c[c_cols_ == 1 ? 0 : j];
        c = bias_.data();
      } else if (c_cols_ != n_) {
        std::fill(bias_.begin(), bias_.end(), c[0]);
        c = bias_.data();
      }
      args[DNNL_ARG_BIAS] = wrap(bias_md_, c);
    } else if (has_c_) {
      broadcast_c<float>(ctx.input(2), y.data<float>());
    }
    prim_.execute(stream, args);
    stream.wait();
  }

 private:
  void prepare_dnnl() {
    using dt = dnnl::memory::data_type;
    a_md_ = dnnl::memory::desc({m_, k_}, dt::f32, trans_a_ ? dnnl::memory::dims{1, m_} : dnnl::memory::dims{k_, 1});
    b_md_ = dnnl::memory::desc({k_, n_}, dt::f32, trans_b_ ? dnnl::memory::dims{1, k_} : dnnl::memory::dims{n_, 1});
    y_md_ = plain_desc({m_, n_}, DType::Float32);
    // A C that is one row (or one value) is the bias; oneDNN's matmul keeps its fast path only
    // for a [1, N] bias, so other shapes of C are added by the sum post-op instead.
    c_as_bias_ = has_c_ && c_rows_ == 1;
    bias_scale_ = c_as_bias_ ? beta_ / alpha_ : 1.f;
    if (c_as_bias_) {
      bias_md_ = plain_desc({1, n_}, DType::Float32);
      bias_.assign(size_t(n_), 0.f);
    }
    dnnl::primitive_attr attr;
    if (alpha_ != 1.f) attr.set_output_scales(0, {alpha_});
    if (has_c_ && !c_as_bias_) {
      dnnl::post_ops ops;
      ops.append_sum(beta_);
      attr.set_post_ops(ops);
    }
    const auto w_md = weight_ ? dnnl::memory::desc({k_, n_}, dt::f32, dnnl::memory::format_tag::any) : b_md_;
    dnnl::matmul::desc d = c_as_bias_ ? dnnl::matmul::desc(a_md_, w_md, bias_md_, y_md_)
                                      : dnnl::matmul::desc(a_md_, w_md, y_md_);
    dnnl::matmul::primitive_desc pd(d, attr, dnnl_engine());
    prim_ = dnnl::matmul(pd);
    packed_.pack(weight_, b_md_, pd.weights_desc());
  }

  // y[i, j] = C broadcast to [M, N].
  template <typename T>
  void broadcast_c(const Tensor& c, T* y) const {
    const T* pc = c.data<T>();
    parallel_for(m_, std::max<int64_t>(1, 16384 / n_), [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const T* row = pc + (c_rows_ == 1 ? 0 : i * c_cols_);
        T* yr = y + i * n_;
        if (c_cols_ == 1) std::fill(yr, yr + n_, row[0]);
        else std::memcpy(yr, row, size_t(n_) * sizeof(T));
      }
    });
  }

  template <typename T>
  void reference(OpContext& ctx, Tensor& y) {
    const T* pa = ctx.input(0).data<T>();
    const T* pb = ctx.input(1).data<T>();
    T* py = y.data<T>();
    const T alpha = T(alpha_), beta = T(beta_);
    if (has_c_) broadcast_c<T>(ctx.input(2), py);
    parallel_for(m_, 1, [&](int64_t begin, int64_t end) {
      std::vector<T> acc(static_cast<size_t>(n_));
      for (int64_t i = begin; i < end; ++i) {
        std::fill(acc.begin(), acc.end(), T(0));
        for (int64_t q = 0; q < k_; ++q) {
          const T av = trans_a_ ? pa[q * m_ + i] : pa[i * k_ + q];
          if (trans_b_) {
            for (int64_t j = 0; j < n_; ++j) acc[size_t(j)] += av * pb[j * k_ + q];
          } else {
            const T* br = pb + q * n_;
#pragma omp simd
            for (int64_t j = 0; j < n_; ++j) acc[size_t(j)] += av * br[j];
          }
        }
        T* yr = py + i * n_;
        for (int64_t j = 0; j < n_; ++j) yr[j] = alpha * acc[size_t(j)] + (has_c_ ? beta * yr[j] : T(0));
      }
    });
  }

  const Tensor* weight_;
  float alpha_, beta_;
  bool trans_a_, trans_b_;
  int64_t m_ = 0, k_ = 0, n_ = 0, c_rows_ = 1, c_cols_ = 1;
  bool has_c_ = false, use_dnnl_ = false, c_as_bias_ = false;
  float bias_scale_ = 1.f;
  std::vector<float> bias_;
  dnnl::matmul prim_;
  dnnl::memory::desc a_md_, b_md_, y_md_, bias_md_;
  PackedWeights packed_;
};

const OpRegistration kGemm{"Gemm", make_kernel<Gemm>};

}  // namespace
}  // namespace kiln
