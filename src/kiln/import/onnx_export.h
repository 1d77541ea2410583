// Writes Kiln's IR back as an ONNX model (SessionOptions.optimized_model_filepath): the graph
// after Kiln's rewrites, with fused nodes in the "kiln" domain.
#pragma once

#include <string>

#include "kiln/ir/graph.h"

namespace kiln {

// The serialized ModelProto.
std::string export_model(const ir::Model& model);

}  // namespace kiln
