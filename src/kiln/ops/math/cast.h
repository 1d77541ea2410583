// Element conversion shared by Cast and CastLike.
#pragma once

#include "kiln/core/tensor.h"

namespace kiln {

// Whether cast_elements converts to and from `t`: every number type, bool, string, float16 and
// bfloat16.
bool cast_supported(DType t);

// Converts every element of `src` into `dst` (same count). Numbers follow C conversions
// (float to integer truncates toward zero), bool is x != 0, 16-bit floats go through float
// with round-to-nearest-even. Numbers become strings as numpy prints them (the shortest digits
// that read back to the same value; "NaN", "INF", "-INF"; bool as "True"/"False"); strings
// parse as numbers (case-insensitive "INF"/"+INF"/"-INF"/"NaN"; "100.5" to an integer gives
// 100; "true"/"false" for bool) and fail on text that is not a number or does not fit.
void cast_elements(const Tensor& src, Tensor& dst);

}  // namespace kiln
