// safetensors files (huggingface/safetensors format): named host tensors plus string metadata.
// Checkpoints and converted reference weights use it (DESIGN.md "Checkpoints and interop"):
//   yolo::write_safetensors("last.safetensors", {{"model.0.conv.weight", w}}, {{"epoch", "3"}});
//   yolo::SafetensorsFile f = yolo::read_safetensors("last.safetensors");
// Names and shapes are stored exactly as given; layout conversions (OIHW <-> OHWI) belong to nn/.
#pragma once

#include <map>
#include <string>

#include "core/tensor.h"

namespace yolo {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;  // host tensors, any shape (0-d and empty included)
  std::map<std::string, std::string> metadata;
};

// Reads and checks a whole file. Every number in the header is validated before it is used (header
// length, JSON structure, dtypes, shapes, offsets tiling the data exactly, no duplicate names), so
// a truncated or forged file throws yolo::Error naming the file and the problem; allocations never
// exceed the file's size. Dtypes F32 F64 F16 BF16 I32 I64 U8 are read as themselves, BOOL as u8.
SafetensorsFile read_safetensors(const std::string& path);

// Writes `tensors` (host tensors; copy device tensors with ctx.to_host first) and `metadata`.
// Deterministic bytes: tensors in name order, header padded with spaces to a multiple of 8.
// Atomic: the bytes go to a temporary file in the same directory, are flushed to disk (fsync) and
// renamed over `path`; on any failure it throws yolo::Error, removes the temporary file and leaves
// an existing `path` untouched.
void write_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace yolo
