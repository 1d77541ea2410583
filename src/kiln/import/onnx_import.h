// Reads ONNX models (files or bytes) through ONNX's own protobuf classes into Kiln's IR.
// Model files are untrusted: sizes, types and external-data paths are checked before use.
#pragma once

#include <memory>
#include <string>

#include "kiln/ir/graph.h"

namespace kiln {

std::shared_ptr<ir::Model> load_model_file(const std::string& path);
// External data of a model given as bytes is resolved against `base_dir` ("" = current folder).
std::shared_ptr<ir::Model> load_model_bytes(const void* data, size_t size, const std::string& base_dir = "");

}  // namespace kiln
