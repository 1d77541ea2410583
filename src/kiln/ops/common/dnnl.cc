#include "kiln/ops/common/dnnl.h"

namespace kiln {

dnnl::engine& dnnl_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& dnnl_stream() {
  thread_local dnnl::stream stream(dnnl_engine());
  return stream;
}

dnnl::memory::data_type dnnl_type(DType t) {
  using dt = dnnl::memory::data_type;
  switch (t) {
    case DType::Float32: return dt::f32;
    case DType::BFloat16: return dt::bf16;
    case DType::Float16: return dt::f16;
    case DType::Int32: return dt::s32;
    case DType::Int8: return dt::s8;
    case DType::UInt8: return dt::u8;
    default: fail(ErrorCode::NotImplemented, "oneDNN has no type for ", dtype_name(t));
  }
}

void pack_weights(const Tensor* weight, const dnnl::memory::desc& plain, const dnnl::memory::desc& wanted,
                  dnnl::memory& packed) {
  if (!weight || wanted == plain) {
    packed = dnnl::memory();
    return;
  }
  if (packed && packed.get_desc() == wanted) return;
  packed = dnnl::memory(wanted, dnnl_engine());
  dnnl::memory src = wrap(plain, weight->raw());
  dnnl::reorder(src, packed).execute(dnnl_stream(), src, packed);
  dnnl_stream().wait();
}

dnnl::memory::desc plain_desc(const Shape& s, DType t) {
  dnnl::memory::dims strides(s.size());
  int64_t stride = 1;
  for (size_t i = s.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= std::max<int64_t>(s[i], 1);
  }
  return dnnl::memory::desc(dnnl_dims(s), dnnl_type(t), strides);
}

}  // namespace kiln
