// The vector ISA the hand-written x86 CPU kernels (kernels/cpu/conv_direct.cpp, the augmentation
// kernels) may use: the best the CPU supports, optionally capped lower so tests can run every
// variant on one machine.
#pragma once

namespace yolo::cpu {

enum class Isa { baseline, avx2, avx512 };  // avx2 includes FMA; avx512 is F, VL, BW, DQ and FMA

// The best ISA of this CPU (x86-64 GCC/Clang builds; baseline elsewhere), lowered to the cap.
Isa isa();

// Caps isa() (Isa::avx512, the default, means no cap); returns the previous cap.
Isa set_isa_cap(Isa cap);

}  // namespace yolo::cpu
