// Out-of-line helpers for the check macros in core/error.h.
#include "core/error.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace yolo {

void throw_error(const char* file, int line, const std::string& message) {
  const char* base = std::strrchr(file, '/');
  std::ostringstream s;
  s << message << " (at " << (base ? base + 1 : file) << ":" << line << ")";
  throw Error(s.str());
}

void assert_fail(const char* file, int line, const char* expression) {
  std::fprintf(stderr, "yolocore internal error: assertion '%s' failed at %s:%d\n", expression,
               file, line);
  std::abort();
}

}  // namespace yolo
