// Host-only HSV round trip for the CPU augmentation apply (kernels/cpu/augment.cpp): one row of
// RGB u8 pixels, in place, giving exactly the bytes of augment_pixel.h's rgb_to_hsv -> LUTs ->
// hsv_to_rgb (Note [cv2 8-bit HSV]). An AVX2+FMA version is picked at run time where the CPU has
// it; the portable per-pixel code is the fallback and handles the columns cv2 converts one by one.
// The *_avx2 entry points exist so tests can hold the vector code to the scalar reference.
#pragma once

#include <cstdint>

namespace yolo::augment_cpu {

// The tables one sample's rows need: cv2's division tables and the sample's hue / saturation /
// value lookup tables, also in the forms the vector gathers read.
struct HsvRowTables {
  int sdiv[256];
  int hdiv[256];
  uint8_t lut[3][256];
  int vtab[256];   // sdiv[v] | lut[2][v] << 20
  int hue32[256];  // lut[0] widened
  int sat32[256];  // lut[1] widened
  explicit HsvRowTables(const uint8_t (*sample_lut)[256]);
};

// rgb: (n, 3) RGB u8, row-major, converted in place; the row's width is n (it decides which
// columns take cv2's vector flavour, Note [cv2 8-bit HSV]).
void hsv_row(uint8_t* rgb, int n, const HsvRowTables& t);

// The portable reference for hsv_row (per pixel, augment_pixel.h).
void hsv_row_portable(uint8_t* rgb, int n, const HsvRowTables& t);

// True when this CPU runs the AVX2+FMA code below.
bool hsv_avx2_supported();

// hsv_row through the vector code (requires hsv_avx2_supported()).
void hsv_row_avx2(uint8_t* rgb, int n, const HsvRowTables& t);

// Test hooks for the two halves of the vector code; n a multiple of 8, both (n, 3) u8.
// rgb -> (h, s, v) before the lookup tables, cv2's COLOR_RGB2HSV integer path.
void rgb_to_hsv_avx2(const uint8_t* rgb, int n, uint8_t* hsv);
// (h, s, v) -> rgb, cv2's COLOR_HSV2RGB in its vector flavour (h < 256 accepted as cv2 does).
void hsv_to_rgb_avx2(const uint8_t* hsv, int n, uint8_t* rgb);

}  // namespace yolo::augment_cpu
