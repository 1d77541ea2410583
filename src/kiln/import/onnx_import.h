// Reads ONNX models (files or bytes) through ONNX's own protobuf classes into Kiln's IR.
// Model files are untrusted: sizes, types and external-data paths are checked before use.
#pragma once

#include <memory>
#include <string>

#include "kiln/ir/graph.h"

namespace kiln {

// With `check`, ONNX's checker also judges the model where it can (opsets up to 17, IR up to 8)
// and its objection lands in Model::checker_message; it never refuses a model. Sessions skip it:
// its first use in a process builds ONNX's whole operator-schema registry (about 10 ms), and
// Kiln's own rules check what a session runs.
std::shared_ptr<ir::Model> load_model_file(const std::string& path, bool check = false);
// External data of a model given as bytes is resolved against `base_dir` ("" = current folder).
std::shared_ptr<ir::Model> load_model_bytes(const void* data, size_t size, const std::string& base_dir = "",
                                            bool check = false);

}  // namespace kiln
