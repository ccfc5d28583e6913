// `yolo dataset check --data X.yaml [--no-cache] [--workers N]`: scans every split of a data yaml
// the way the reference's LoadImagesAndLabels does, prints its summary line ("Scanning '...' images
// and labels... N found, M missing, E empty, C corrupt"), every problem with its file and the
// per-class image and instance counts, and says whether the set can be trained on.
#pragma once

#include <cstdio>

namespace yolo {

// argv[0] is the subcommand word ("check"), options follow (call it with main's argc - 2,
// argv + 2). Writes the report to `out`. Returns 0 when the set is usable (train has at least one
// label file with labels and no class id is >= nc), 1 when it is not or the yaml is wrong (the
// reason is printed), 2 for bad arguments.
int run_dataset_check(int argc, char** argv, std::FILE* out);

}  // namespace yolo
