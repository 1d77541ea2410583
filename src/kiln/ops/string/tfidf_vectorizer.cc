// TfIdfVectorizer (opset 9): counts, per row of X ([C] or [N, C] of int32, int64 or strings),
// the n-grams of the pool (lengths min_gram_length..max_gram_length, items up to
// max_skip_count apart) and writes each count, or its IDF/TF-IDF weighting, at the n-gram's
// output index (ngram_indexes). The pool lists all 1-grams, then all 2-grams... with
// ngram_counts[i] the pool offset of the (i+1)-grams. Counting follows ONNX Runtime: every start
// position and skip distance is tried once, and unigrams are counted at skip 0 only.
#include <algorithm>
#include <map>
#include <string>

#include "kiln/exec/kernel.h"

namespace kiln {
namespace {

enum class TfIdfMode { TF, IDF, TFIDF };

// A trie of the pool's n-grams; a node's `slot` is the pool n-gram ending there, or -1.
template <typename K>
struct NgramTrie {
  struct Node {
    std::map<K, int> children;
    int64_t slot = -1;
  };
  std::vector<Node> nodes{Node{}};

  void add(const std::vector<K>& gram, int64_t slot) {
    int cur = 0;
    for (const K& k : gram) {
      auto it = nodes[size_t(cur)].children.find(k);
      if (it == nodes[size_t(cur)].children.end()) {
        nodes.push_back(Node{});
        it = nodes[size_t(cur)].children.emplace(k, int(nodes.size() - 1)).first;
      }
      cur = it->second;
    }
    nodes[size_t(cur)].slot = slot;
  }
};

class TfIdfVectorizer : public Kernel {
 public:
  explicit TfIdfVectorizer(const ir::Node& node)
      : min_n_(node.attr_int("min_gram_length", 0)), max_n_(node.attr_int("max_gram_length", 0)),
        max_skip_(node.attr_int("max_skip_count", 0)), ngram_counts_(node.attr_ints("ngram_counts")),
        ngram_indexes_(node.attr_ints("ngram_indexes")), weights_(node.attr_floats("weights")) {
    const std::string mode = node.attr_string("mode", "");
    if (mode == "TF") mode_ = TfIdfMode::TF;
    else if (mode == "IDF") mode_ = TfIdfMode::IDF;
    else if (mode == "TFIDF") mode_ = TfIdfMode::TFIDF;
    else fail(ErrorCode::InvalidGraph, "mode must be TF, IDF or TFIDF, got '", mode, "'");
    if (min_n_ < 1 || max_n_ < min_n_ || max_skip_ < 0)
      fail(ErrorCode::InvalidGraph, "need 1 <= min_gram_length <= max_gram_length and max_skip_count >= 0, got ",
           min_n_, ", ", max_n_, ", ", max_skip_);
    strings_ = node.has_attr("pool_strings");
    const int64_t pool_size =
        strings_ ? int64_t(node.attr_strings("pool_strings").size()) : int64_t(node.attr_ints("pool_int64s").size());
    // Split the pool into n-grams: ngram_counts[i] starts the (i + 1)-grams.
    std::vector<std::pair<int64_t, int64_t>> grams;  // (pool offset, length)
    for (size_t i = 0; i < ngram_counts_.size(); ++i) {
      const int64_t begin = ngram_counts_[i], end = i + 1 < ngram_counts_.size() ? ngram_counts_[i + 1] : pool_size;
      const int64_t n = int64_t(i) + 1;
      if (begin < 0 || end > pool_size || begin > end || (end - begin) % n != 0)
        fail(ErrorCode::InvalidGraph, "ngram_counts entry ", i, " (", begin, ") does not split a pool of ", pool_size,
             " items into ", n, "-grams");
      for (int64_t p = begin; p < end; p += n) grams.push_back({p, n});
    }
    if (grams.size() != ngram_indexes_.size())
      fail(ErrorCode::InvalidGraph, "the pool holds ", grams.size(), " n-grams but ngram_indexes has ",
           ngram_indexes_.size(), " entries");
    if (!weights_.empty() && weights_.size() != grams.size())
      fail(ErrorCode::InvalidGraph, "weights has ", weights_.size(), " entries for ", grams.size(), " n-grams");
    for (int64_t idx : ngram_indexes_) {
      if (idx < 0) fail(ErrorCode::InvalidGraph, "ngram_indexes must not be negative, got ", idx);
      out_size_ = std::max(out_size_, idx + 1);
    }
    if (strings_) build(str_trie_, node.attr_strings("pool_strings"), grams);
    else build(int_trie_, node.attr_ints("pool_int64s"), grams);
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const bool ok = strings_ ? x.dtype() == DType::String : (x.dtype() == DType::Int32 || x.dtype() == DType::Int64);
    if (!ok)
      fail(ErrorCode::InvalidArgument, "X must be ", strings_ ? "string (the pool holds strings)" : "int32 or int64",
           ", got ", dtype_name(x.dtype()));
    if (x.rank() != 1 && x.rank() != 2)
      fail(ErrorCode::InvalidArgument, "X must be [C] or [N, C], got ", shape_str(x.shape()));
    ctx.set_output(0, DType::Float32, x.rank() == 1 ? Shape{out_size_} : Shape{x.dim(0), out_size_});
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t rows = x.rank() == 1 ? 1 : x.dim(0), cols = x.dim(x.rank() - 1);
    float* y = ctx.output(0).data<float>();
    std::fill(y, y + rows * out_size_, 0.0f);
    std::vector<int64_t> counts(ngram_indexes_.size());
    for (int64_t r = 0; r < rows; ++r) {
      std::fill(counts.begin(), counts.end(), 0);
      if (x.dtype() == DType::String) count(str_trie_, x.data<std::string>() + r * cols, cols, counts);
      else if (x.dtype() == DType::Int32) count(int_trie_, x.data<int32_t>() + r * cols, cols, counts);
      else count(int_trie_, x.data<int64_t>() + r * cols, cols, counts);
      float* yr = y + r * out_size_;
      for (size_t i = 0; i < counts.size(); ++i) {
        const float w = weights_.empty() ? 1.0f : weights_[i];
        const float c = float(counts[i]);
        yr[ngram_indexes_[i]] = mode_ == TfIdfMode::TF ? c : mode_ == TfIdfMode::IDF ? (c > 0 ? w : 0.0f) : c * w;
      }
    }
  }

 private:
  template <typename K>
  static void build(NgramTrie<K>& trie, const std::vector<K>& pool,
                    const std::vector<std::pair<int64_t, int64_t>>& grams) {
    for (size_t g = 0; g < grams.size(); ++g)
      trie.add(std::vector<K>(pool.begin() + grams[g].first, pool.begin() + grams[g].first + grams[g].second),
               int64_t(g));
  }

  template <typename K, typename T>
  void count(const NgramTrie<K>& trie, const T* row, int64_t cols, std::vector<int64_t>& counts) const {
    int64_t start_n = min_n_;
    for (int64_t skip = 1; skip <= max_skip_ + 1; ++skip) {
      for (int64_t s = 0; s < cols; ++s) {
        if (s + skip * (start_n - 1) >= cols) break;  // no n-gram of a counted length fits
        int cur = 0;
        for (int64_t n = 1, p = s; n <= max_n_ && p < cols; ++n, p += skip) {
          const auto& children = trie.nodes[size_t(cur)].children;
          auto it = children.find(K(row[p]));
          if (it == children.end()) break;
          cur = it->second;
          const int64_t slot = trie.nodes[size_t(cur)].slot;
          if (n >= start_n && slot >= 0) ++counts[size_t(slot)];
        }
      }
      // Unigrams do not depend on the skip distance: count them once.
      if (start_n == 1 && ++start_n > max_n_) break;
    }
  }

  int64_t min_n_, max_n_, max_skip_;
  std::vector<int64_t> ngram_counts_, ngram_indexes_;
  std::vector<float> weights_;
  TfIdfMode mode_ = TfIdfMode::TF;
  bool strings_ = false;
  int64_t out_size_ = 0;
  NgramTrie<int64_t> int_trie_;
  NgramTrie<std::string> str_trie_;
};

const OpRegistration kTfIdfVectorizer{"", "TfIdfVectorizer", 9, make_kernel<TfIdfVectorizer>};

}  // namespace
}  // namespace kiln
