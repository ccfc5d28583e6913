// Model summary as the reference prints it: parse_model's per-layer table
// (`from  n  params  module  arguments`) and model_info's line
// ("YOLOv5n summary: 270 layers, 1872157 parameters, 1872157 gradients, 4.6 GFLOPs").
// Used by `yolo info CFG [--weights W] [--img 640] [--fuse]`.
#pragma once

#include <string>

#include "yolo/model.h"

namespace yolo {

// The table, one line per layer, with its header line.
std::string model_layer_table(const Model& m);
// "<name> summary: L layers, P parameters, G gradients, F GFLOPs"; name from the yaml file stem
// with yolov5 -> YOLOv5 ("Model" for a yaml given as text).
std::string model_summary(const Model& m, int64_t img = 640);

}  // namespace yolo
