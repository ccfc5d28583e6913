// Dataset yamls as ultralytics reads them (check_dataset + train.py's nc/names checks):
//   path: ../datasets/coco128   train: images/train2017   val: [images/val, more/val]
//   test: list.txt              nc: 80                    names: [person, ...] or {0: person, ...}
// load_dataset_config("coco128.yaml") resolves every split to absolute sources; `yolo train`,
// `yolo val` and `yolo dataset check` start from it.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace yolo {

struct DatasetConfig {
  std::filesystem::path file;  // the yaml ("<text>" for parse_dataset_config without a file)
  std::filesystem::path root;  // the resolved `path:` (absolute)
  // Each split: absolute folders, .txt image lists or image files, in yaml order; empty = absent.
  std::vector<std::string> train, val, test;
  int nc = 0;
  std::vector<std::string> names;  // nc entries; index = class id
  std::string download;            // kept for messages; yolocore never runs it
  std::vector<std::string> warnings;

  // The split by name ("train", "val", "test"); throws yolo::Error for another name.
  const std::vector<std::string>& split(const std::string& name) const;
};

// Reads and checks a data yaml (Note [Dataset yaml rules] in the .cpp). Throws yolo::Error naming
// the file, the key and the fix for: unreadable file or yaml syntax, missing train/val, neither nc
// nor names, names keys that are not the integers 0..n-1, len(names) != nc, a train or val source
// that does not exist (with every place it was looked for).
DatasetConfig load_dataset_config(const std::string& yaml_path);
// The same from yaml text; relative paths resolve as if the yaml were in `yaml_dir`.
DatasetConfig parse_dataset_config(const std::string& yaml_text,
                                   const std::filesystem::path& yaml_dir,
                                   const std::string& source_name = "<text>");

}  // namespace yolo
