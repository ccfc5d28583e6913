// parse_model's table and model_info's summary line, formatted like the reference's f-strings.
#include "yolo/info.h"

#include <cstdio>
#include <filesystem>

namespace yolo {

std::string model_layer_table(const Model& m) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof(line), "%3s%18s%3s%10s  %-40s%-30s\n", "", "from", "n", "params", "module",
                "arguments");
  out += line;
  for (const LayerInfo& l : m.layers()) {
    std::string from;
    if (l.from_is_list) {
      from = "[";
      for (size_t i = 0; i < l.from.size(); ++i) from += (i ? ", " : "") + std::to_string(l.from[i]);
      from += "]";
    } else {
      from = std::to_string(l.from.at(0));
    }
    std::snprintf(line, sizeof(line), "%3d%18s%3d%10lld  %-40s%-30s\n", l.index, from.c_str(), l.n,
                  static_cast<long long>(l.params), l.type.c_str(), l.args.c_str());
    out += line;
  }
  return out;
}

std::string model_summary(const Model& m, int64_t img) {
  std::string name = "Model";
  if (m.config().source != "<string>") {
    name = std::filesystem::path(m.config().source).stem().string();
    if (name.rfind("yolov5", 0) == 0) name = "YOLOv5" + name.substr(6);
  }
  const long long p = static_cast<long long>(m.num_parameters());
  char line[256];
  std::snprintf(line, sizeof(line), "%s summary: %lld layers, %lld parameters, %lld gradients, %.1f GFLOPs",
                name.c_str(), static_cast<long long>(m.num_modules()), p, p, m.gflops(img));
  return line;
}

}  // namespace yolo
