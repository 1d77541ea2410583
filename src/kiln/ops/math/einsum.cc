// Einsum (opset 12): any equation the spec allows - explicit or implicit output, ellipsis
// (broadcast like numpy), repeated labels within an operand (diagonals), scalars.
//
// At shape time the equation becomes a short program over strided views. Each operand is a view
// with one (size, stride) per distinct label: a repeated label's strides add up (the diagonal)
// and a size-1 dim broadcast against a larger one gets stride 0. Operands are then contracted
// left to right: for A and B, the labels both share and still need are the batch, the ones they
// share and nothing later needs are contracted (K), and the rest are A's rows (M) and B's
// columns (N); labels only one side has and nothing needs are summed away first. A view whose
// label groups are already laid out as a dense [batch, M, K] (or [batch, K, M]) matrix feeds
// the batched matmul directly; otherwise it is gathered (and summed) into scratch. float32
// matmuls run on oneDNN, other types on a plain loop. A last gather puts the labels in the
// output's order when the final product does not already have it.
#include "kiln/ops/common/dnnl.h"
#include "kiln/ops/reduce/reduce.h"

namespace kiln {
namespace {

constexpr int kEllipsis = -1;
constexpr int kLetters = 52;  // a-z, A-Z; ellipsis dims are labels 52, 53, ...

int letter_label(char c) { return c >= 'a' && c <= 'z' ? c - 'a' : c - 'A' + 26; }
char label_char(int l) { return l < 26 ? char('a' + l) : char('A' + l - 26); }

struct Term {
  std::vector<int> labels;  // letter labels, kEllipsis where "..." stands
  bool has_ellipsis() const { return std::find(labels.begin(), labels.end(), kEllipsis) != labels.end(); }
  int64_t letters() const { return int64_t(labels.size()) - (has_ellipsis() ? 1 : 0); }
};

Term parse_term(const std::string& s, const std::string& equation) {
  Term t;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      t.labels.push_back(letter_label(c));
    } else if (c == '.' && s.compare(i, 3, "...") == 0 && !t.has_ellipsis()) {
      t.labels.push_back(kEllipsis);
      i += 2;
    } else {
      fail(ErrorCode::InvalidGraph, "equation '", equation, "' is malformed near '", s.substr(i),
           "' (expected letters and at most one '...' per term)");
    }
  }
  return t;
}

// A strided view of a buffer: buffers [0, inputs) are the inputs, then scratch, then the output.
struct View {
  int buf = 0;
  std::vector<int> labels;
  std::vector<int64_t> sizes, strides;
  int find(int l) const {
    auto it = std::find(labels.begin(), labels.end(), l);
    return it == labels.end() ? -1 : int(it - labels.begin());
  }
};

// dst (dense, dims out_sizes) = src gathered along out_strides, summed over the sum dims.
struct Gather {
  int src, dst;
  std::vector<int64_t> out_sizes, out_strides;
  std::vector<int64_t> sum_offsets;  // offsets of every combination of the summed labels
};

// c[b, m, n] = sum_k a[b, m, k] b[b, k, n]; c is dense.
struct BatchMatMul {
  int a, b, c;
  int64_t batch, m, n, k;
  int64_t a_sb, a_sm, a_sk, b_sb, b_sk, b_sn;
  bool dnnl = false;
  dnnl::matmul prim;
  dnnl::memory::desc a_md, b_md, c_md;
};

class Einsum : public Kernel {
 public:
  explicit Einsum(const ir::Node& node) : equation_(node.attr_string("equation", "")) {
    if (!node.has_attr("equation")) fail(ErrorCode::InvalidGraph, "the equation attribute is required");
    std::string eq;
    for (char c : equation_)
      if (c != ' ') eq += c;
    const size_t arrow = eq.find("->");
    const std::string lhs = eq.substr(0, arrow);
    size_t start = 0;
    while (true) {
      const size_t comma = lhs.find(',', start);
      terms_.push_back(parse_term(lhs.substr(start, comma - start), equation_));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (arrow != std::string::npos) {
      out_ = parse_term(eq.substr(arrow + 2), equation_);
      std::vector<bool> seen(kLetters, false);
      for (int l : out_.labels) {
        if (l == kEllipsis) continue;
        if (seen[size_t(l)]) fail(ErrorCode::InvalidGraph, "equation '", equation_, "' repeats '", label_char(l), "' in its output");
        seen[size_t(l)] = true;
        bool found = false;
        for (const Term& t : terms_) found = found || std::count(t.labels.begin(), t.labels.end(), l) > 0;
        if (!found)
          fail(ErrorCode::InvalidGraph, "equation '", equation_, "' has output label '", label_char(l), "' that no input has");
      }
    } else {
      // Implicit output: the ellipsis dims, then the labels seen exactly once, in ASCII order.
      std::vector<int> count(kLetters, 0);
      bool ellipsis = false;
      for (const Term& t : terms_)
        for (int l : t.labels) {
          if (l == kEllipsis) ellipsis = true;
          else ++count[size_t(l)];
        }
      if (ellipsis) out_.labels.push_back(kEllipsis);
      for (char c = 'A'; c <= 'Z'; ++c)
        if (count[size_t(letter_label(c))] == 1) out_.labels.push_back(letter_label(c));
      for (char c = 'a'; c <= 'z'; ++c)
        if (count[size_t(letter_label(c))] == 1) out_.labels.push_back(letter_label(c));
    }
  }

  void prepare(OpContext& ctx) override {
    const int n = ctx.num_inputs();
    if (n != int(terms_.size()))
      fail(ErrorCode::InvalidArgument, "equation '", equation_, "' has ", terms_.size(), " operands but the node has ", n,
           " inputs");
    dtype_ = ctx.input(0).dtype();
    int64_t ell = 0;  // ellipsis rank: the longest any operand spans
    for (int i = 0; i < n; ++i) {
      const Tensor& t = ctx.input(i);
      if (t.dtype() != dtype_)
        fail(ErrorCode::InvalidArgument, "input ", i, " is ", dtype_name(t.dtype()), " but input 0 is ", dtype_name(dtype_));
      const Term& term = terms_[size_t(i)];
      if (term.has_ellipsis() ? t.rank() < term.letters() : t.rank() != term.letters())
        fail(ErrorCode::InvalidArgument, "operand ", i, " of shape ", shape_str(t.shape()), " does not match term ", i,
             " of equation '", equation_, "' (", term.letters(), " labels", term.has_ellipsis() ? " and '...'" : "", ")");
      if (term.has_ellipsis()) ell = std::max(ell, t.rank() - term.letters());
    }
    // Per operand: one label per dim; the sizes of each label across operands.
    const int num_labels = kLetters + int(ell);
    std::vector<int64_t> size(static_cast<size_t>(num_labels), -1);
    std::vector<std::vector<int>> dims_labels(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      const Tensor& t = ctx.input(i);
      std::vector<int>& dl = dims_labels[size_t(i)];
      for (int l : terms_[size_t(i)].labels) {
        if (l != kEllipsis) {
          dl.push_back(l);
          continue;
        }
        const int64_t e = t.rank() - terms_[size_t(i)].letters();
        for (int64_t j = 0; j < e; ++j) dl.push_back(kLetters + int(ell - e + j));
      }
      for (int64_t d = 0; d < t.rank(); ++d) {
        const int l = dl[size_t(d)];
        int64_t& s = size[size_t(l)];
        const int64_t v = t.dim(d);
        if (s == -1 || s == 1) s = v;
        else if (v != s && v != 1)
          fail(ErrorCode::InvalidArgument, "equation '", equation_, "': ", l < kLetters ? "label '" : "ellipsis dim ",
               l < kLetters ? std::string(1, label_char(l)) + "'" : std::to_string(l - kLetters), " has sizes ", s,
               " and ", v, " that do not broadcast");
      }
    }
    // Output labels and shape.
    std::vector<int> out_labels;
    for (int l : out_.labels) {
      if (l != kEllipsis) out_labels.push_back(l);
      else
        for (int64_t j = 0; j < ell; ++j) out_labels.push_back(kLetters + int(j));
    }
    Shape out_shape;
    for (int l : out_labels) out_shape.push_back(size[size_t(l)]);
    ctx.set_output(0, dtype_, out_shape);

    gathers_.clear(), matmuls_.clear(), program_.clear(), scratch_sizes_.clear();
    trivial_ = shape_size(out_shape) == 0;
    zero_ = false;
    for (int i = 0; i < n; ++i) zero_ = zero_ || ctx.input(i).size() == 0;
    if (trivial_ || zero_) return;

    num_inputs_ = n;
    std::vector<View> views;
    for (int i = 0; i < n; ++i) {
      const Tensor& t = ctx.input(i);
      const Shape st = row_major_strides(t.shape());
      View v;
      v.buf = i;
      for (int64_t d = 0; d < t.rank(); ++d) {
        const int l = dims_labels[size_t(i)][size_t(d)];
        // A size-1 dim against a larger label size broadcasts: stride 0.
        const int64_t stride = t.dim(d) == 1 ? 0 : st[size_t(d)];
        const int at = v.find(l);
        if (at < 0) {
          v.labels.push_back(l), v.sizes.push_back(size[size_t(l)]), v.strides.push_back(stride);
        } else {
          if (t.dim(d) != t.dim(first_dim(dims_labels[size_t(i)], l)))
            fail(ErrorCode::InvalidArgument, "operand ", i, " repeats label '", label_char(l),
                 "' over dims of different sizes in ", shape_str(t.shape()));
          v.strides[size_t(at)] += stride;  // a repeated label walks the diagonal
        }
      }
      views.push_back(std::move(v));
    }

    View cur = views[0];
    for (int i = 1; i < n; ++i) {
      std::vector<bool> keep(static_cast<size_t>(num_labels), false);
      for (int l : out_labels) keep[size_t(l)] = true;
      for (int j = i + 1; j < n; ++j)
        for (int l : views[size_t(j)].labels) keep[size_t(l)] = true;
      cur = contract(cur, views[size_t(i)], keep);
    }
    // The result of the last product is dense in its label order: when that is the output's
    // order with nothing left to sum, retarget the product at the output.
    if (n > 1 && cur.labels == out_labels && !program_.empty() && program_.back().first == kMatMul) {
      scratch_sizes_.pop_back();  // the product's own scratch was the last one taken
      matmuls_.back().c = output_buf();
    } else {
      add_gather(cur, out_labels, output_buf());
    }
    int64_t bytes = 0;
    for (int64_t s : scratch_sizes_) bytes += s * int64_t(dtype_size(dtype_));
    if (bytes > scratch_bytes_) {
      scratch_ = aligned_buffer(size_t(bytes));
      scratch_bytes_ = bytes;
    }
    for (BatchMatMul& mm : matmuls_) make_primitive(mm);
  }

  void compute(OpContext& ctx) override {
    Tensor& y = ctx.output(0);
    if (trivial_) return;
    dispatch(TypeList<float, double, int32_t, int64_t, uint32_t, uint64_t>{}, dtype_, "Einsum", [&]<typename T>() {
      T* out = y.data<T>();
      if (zero_) return std::fill(out, out + y.size(), T(0));
      std::vector<T*> bufs(size_t(num_inputs_) + scratch_sizes_.size() + 1);
      for (int i = 0; i < num_inputs_; ++i) bufs[size_t(i)] = const_cast<T*>(ctx.input(i).data<T>());
      T* s = static_cast<T*>(scratch_.get());
      for (size_t j = 0; j < scratch_sizes_.size(); ++j) {
        bufs[size_t(num_inputs_) + j] = s;
        s += scratch_sizes_[j];
      }
      bufs.back() = out;
      for (auto [kind, index] : program_) {
        if (kind == kGather) run_gather(gathers_[size_t(index)], bufs);
        else run_matmul(matmuls_[size_t(index)], bufs);
      }
    });
  }

 private:
  enum Kind { kGather, kMatMul };

  static int first_dim(const std::vector<int>& dl, int l) {
    return int(std::find(dl.begin(), dl.end(), l) - dl.begin());
  }
  int output_buf() const { return num_inputs_ + int(scratch_sizes_.size()); }
  int new_scratch(int64_t elements) {
    scratch_sizes_.push_back(elements);
    return num_inputs_ + int(scratch_sizes_.size()) - 1;
  }

  // Gathers `v` into a dense buffer with labels `order`, summing the labels of v not in it.
  void add_gather(const View& v, const std::vector<int>& order, int dst) {
    Gather g;
    g.src = v.buf, g.dst = dst;
    for (int l : order) {
      const int at = v.find(l);
      g.out_sizes.push_back(v.sizes[size_t(at)]);
      g.out_strides.push_back(v.strides[size_t(at)]);
    }
    std::vector<int64_t> ss, sst;
    for (size_t i = 0; i < v.labels.size(); ++i)
      if (std::find(order.begin(), order.end(), v.labels[i]) == order.end()) ss.push_back(v.sizes[i]), sst.push_back(v.strides[i]);
    int64_t combos = shape_size(ss);
    Odometer od(ss, sst, 0);
    for (int64_t i = 0; i < combos; ++i, od.next()) g.sum_offsets.push_back(od.offset());
    program_.push_back({kGather, int(gathers_.size())});
    gathers_.push_back(std::move(g));
  }

  // The merged (size, stride) of a label group when its labels sit in memory as one dim.
  static bool merge_group(const View& v, const std::vector<int>& group, int64_t& size, int64_t& stride) {
    size = 1, stride = 0;
    int64_t next_stride = -1;  // stride the next outer label must have
    for (size_t i = group.size(); i-- > 0;) {
      const int at = v.find(group[i]);
      const int64_t s = v.sizes[size_t(at)], st = v.strides[size_t(at)];
      if (s == 1) continue;
      if (next_stride == -1) stride = st;
      else if (st != next_stride) return false;
      next_stride = st * s;
      size *= s;
    }
    return true;
  }

  struct Matrix {
    int buf;
    int64_t b, r, c;     // batch, rows, cols
    int64_t sb, sr, sc;  // element strides
  };

  // A view as a [batch, rows, cols] matrix over label groups g0, g1, g2, summing `sum`; a
  // zero-copy view when the groups merge and no sum is needed, else a gather into scratch.
  Matrix as_matrix(const View& v, const std::vector<int>& g0, const std::vector<int>& g1, const std::vector<int>& g2,
                   bool any_sum) {
    Matrix m{v.buf, 1, 1, 1, 0, 0, 0};
    if (!any_sum && merge_group(v, g0, m.b, m.sb) && merge_group(v, g1, m.r, m.sr) && merge_group(v, g2, m.c, m.sc)) {
      dnnl::memory::dims unused;
      if (dtype_ != DType::Float32 || dense_strides(m, unused)) return m;  // oneDNN takes dense matrices only
    }
    std::vector<int> order = g0;
    order.insert(order.end(), g1.begin(), g1.end());
    order.insert(order.end(), g2.begin(), g2.end());
    auto sz = [&](const std::vector<int>& g) {
      int64_t p = 1;
      for (int l : g) p *= v.sizes[size_t(v.find(l))];
      return p;
    };
    m.b = sz(g0), m.r = sz(g1), m.c = sz(g2);
    m.buf = new_scratch(m.b * m.r * m.c);
    m.sb = m.r * m.c, m.sr = m.c, m.sc = 1;
    add_gather(v, order, m.buf);
    return m;
  }

  // oneDNN's strides for a matrix stored densely row- or column-major; false for any other layout.
  static bool dense_strides(const Matrix& m, dnnl::memory::dims& out) {
    const bool batch_ok = m.b == 1 || m.sb == m.r * m.c;
    if (batch_ok && (m.c == 1 || m.sc == 1) && (m.r == 1 || m.sr == m.c)) {
      out = {m.r * m.c, m.c, 1};
      return true;
    }
    if (batch_ok && (m.r == 1 || m.sr == 1) && (m.c == 1 || m.sc == m.r)) {
      out = {m.r * m.c, 1, m.r};
      return true;
    }
    return false;
  }

  View contract(const View& a, const View& b, const std::vector<bool>& keep) {
    std::vector<int> batch, contr, rows, cols;
    bool a_sum = false, b_sum = false;
    for (int l : a.labels) {
      const bool in_b = b.find(l) >= 0;
      if (in_b && keep[size_t(l)]) batch.push_back(l);
      else if (in_b) contr.push_back(l);
      else if (keep[size_t(l)]) rows.push_back(l);
      else a_sum = true;
    }
    for (int l : b.labels) {
      if (a.find(l) >= 0) continue;
      if (keep[size_t(l)]) cols.push_back(l);
      else b_sum = true;
    }
    // A as [batch, M, K] or, zero-copy, [batch, K, M]; B as [batch, K, N] or [batch, N, K].
    Matrix ma = as_matrix(a, batch, rows, contr, a_sum);
    Matrix mb = as_matrix(b, batch, contr, cols, b_sum);
    BatchMatMul mm;
    mm.a = ma.buf, mm.b = mb.buf;
    mm.batch = ma.b, mm.m = ma.r, mm.k = ma.c, mm.n = mb.c;
    mm.a_sb = ma.sb, mm.a_sm = ma.sr, mm.a_sk = ma.sc;
    mm.b_sb = mb.sb, mm.b_sk = mb.sr, mm.b_sn = mb.sc;
    View c;
    c.labels = batch;
    c.labels.insert(c.labels.end(), rows.begin(), rows.end());
    c.labels.insert(c.labels.end(), cols.begin(), cols.end());
    for (int l : c.labels) c.sizes.push_back(a.find(l) >= 0 ? a.sizes[size_t(a.find(l))] : b.sizes[size_t(b.find(l))]);
    c.strides = row_major_strides(c.sizes);
    mm.c = c.buf = new_scratch(mm.batch * mm.m * mm.n);
    program_.push_back({kMatMul, int(matmuls_.size())});
    matmuls_.push_back(std::move(mm));
    return c;
  }

  // float32 products whose operands are dense row- or column-major matrices run on oneDNN.
  void make_primitive(BatchMatMul& mm) {
    mm.dnnl = false;
    if (dtype_ != DType::Float32 || mm.k == 0) return;
    using dims = dnnl::memory::dims;
    dims sa, sbm;
    if (!dense_strides({mm.a, mm.batch, mm.m, mm.k, mm.a_sb, mm.a_sm, mm.a_sk}, sa) ||
        !dense_strides({mm.b, mm.batch, mm.k, mm.n, mm.b_sb, mm.b_sk, mm.b_sn}, sbm))
      return;
    const auto f32 = dnnl::memory::data_type::f32;
    mm.a_md = dnnl::memory::desc({mm.batch, mm.m, mm.k}, f32, sa);
    mm.b_md = dnnl::memory::desc({mm.batch, mm.k, mm.n}, f32, sbm);
    mm.c_md = dnnl::memory::desc({mm.batch, mm.m, mm.n}, f32, dims{mm.m * mm.n, mm.n, 1});
    mm.prim = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(mm.a_md, mm.b_md, mm.c_md), dnnl_engine()));
    mm.dnnl = true;
  }

  template <typename T>
  static void run_gather(const Gather& g, const std::vector<T*>& bufs) {
    const T* src = bufs[size_t(g.src)];
    T* dst = bufs[size_t(g.dst)];
    const size_t r = g.out_sizes.size();
    const int64_t inner = r ? g.out_sizes[r - 1] : 1, istride = r ? g.out_strides[r - 1] : 0;
    const std::vector<int64_t> osz(g.out_sizes.begin(), g.out_sizes.end() - (r ? 1 : 0));
    const std::vector<int64_t> ost(g.out_strides.begin(), g.out_strides.end() - (r ? 1 : 0));
    const int64_t rows = shape_size(osz);
    const int64_t work = inner * int64_t(g.sum_offsets.size());
    parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(work, 1)), [&](int64_t s, int64_t e) {
      Odometer od(osz, ost, s);
      for (int64_t row = s; row < e; ++row, od.next()) {
        const T* base = src + od.offset();
        T* d = dst + row * inner;
        if (g.sum_offsets.size() == 1) {
          const T* p = base + g.sum_offsets[0];
          if (istride == 1) std::copy(p, p + inner, d);
          else
            for (int64_t j = 0; j < inner; ++j) d[j] = p[j * istride];
          continue;
        }
        std::fill(d, d + inner, T(0));
        for (int64_t off : g.sum_offsets) {
          const T* p = base + off;
#pragma omp simd
          for (int64_t j = 0; j < inner; ++j) d[j] += p[j * istride];
        }
      }
    });
  }

  template <typename T>
  static void run_matmul(const BatchMatMul& mm, const std::vector<T*>& bufs) {
    const T* a = bufs[size_t(mm.a)];
    const T* b = bufs[size_t(mm.b)];
    T* c = bufs[size_t(mm.c)];
    if constexpr (std::is_same_v<T, float>) {
      if (mm.dnnl) {
        auto& stream = dnnl_stream();
        mm.prim.execute(stream, {{DNNL_ARG_SRC, wrap(mm.a_md, a)}, {DNNL_ARG_WEIGHTS, wrap(mm.b_md, b)}, {DNNL_ARG_DST, wrap(mm.c_md, c)}});
        stream.wait();
        return;
      }
    }
    // The plain product: rows of C accumulate scaled rows of B (contiguous when B's N stride is 1).
    const int64_t m = mm.m, n = mm.n, k = mm.k;
    parallel_for(mm.batch * m, std::max<int64_t>(1, 16384 / std::max<int64_t>(n * k, 1)), [&](int64_t s, int64_t e) {
      for (int64_t w = s; w < e; ++w) {
        const int64_t bi = w / m, i = w % m;
        T* crow = c + w * n;
        std::fill(crow, crow + n, T(0));
        const T* arow = a + bi * mm.a_sb + i * mm.a_sm;
        for (int64_t q = 0; q < k; ++q) {
          const T av = arow[q * mm.a_sk];
          const T* brow = b + bi * mm.b_sb + q * mm.b_sk;
          if (mm.b_sn == 1) {
#pragma omp simd
            for (int64_t j = 0; j < n; ++j) crow[j] += av * brow[j];
          } else {
            for (int64_t j = 0; j < n; ++j) crow[j] += av * brow[j * mm.b_sn];
          }
        }
      }
    });
  }

  std::string equation_;
  std::vector<Term> terms_;
  Term out_;

  DType dtype_ = DType::Undefined;
  bool trivial_ = false, zero_ = false;
  int num_inputs_ = 0;
  std::vector<Gather> gathers_;
  std::vector<BatchMatMul> matmuls_;
  std::vector<std::pair<Kind, int>> program_;
  std::vector<int64_t> scratch_sizes_;
  std::shared_ptr<void> scratch_;
  int64_t scratch_bytes_ = 0;
};

const OpRegistration kEinsum{"Einsum", make_kernel<Einsum>};

}  // namespace
}  // namespace kiln
