// Catch2 entry point for yolo_tests (tests are listed one by one in CTest by catch_discover_tests).
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
