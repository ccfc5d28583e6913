// `yolo selfcheck`: runs each kernel family on small random inputs on the CPU and, when a GPU is
// usable, on CUDA, and compares the two with the test tolerance rule. Prints one line per check.
#pragma once

#include <cstdio>

namespace yolo {

const char* version_string();
// Returns true when every check passed (CUDA checks are skipped, with the reason, without a GPU).
bool run_selfcheck(std::FILE* out);

}  // namespace yolo
