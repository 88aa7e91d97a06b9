/*
 * cordon_cpu.h - the SIMD dispatch point.
 *
 * Caveats:
 * - The feature mask is detected once (cpuid) and cached; it is the only
 *   mutable global in the library.
 * - CORDON_SIMD=scalar in the environment forces the portable paths;
 *   CORDON_SIMD=avx2 caps at AVX2. Every path computes identical results.
 */
#ifndef CORDON_CPU_H
#define CORDON_CPU_H

#include "cordon_error.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
    CORDON_CPU_POPCNT = 1u << 0,
    CORDON_CPU_AVX2 = 1u << 1,
    CORDON_CPU_AVX512 = 1u << 2, /* F + BW + VL + VPOPCNTDQ, and BMI2 */
};

/** The cached mask of CPU features Cordon may use. Thread-safe. */
CORDON_API unsigned cordon_cpu_features(void);

/**
 * Restricts the features used from now on to mask & (what the CPU has), for
 * tests and benchmarks that compare paths. Not to be called while other
 * threads hash. Returns the resulting mask.
 */
CORDON_API unsigned cordon_cpu_set_features(unsigned mask);

/** Name of the widest path in use: "scalar", "avx2" or "avx512". */
CORDON_API const char *cordon_cpu_path_name(void);

#ifdef __cplusplus
}
#endif
#endif
