#include "cordon_cpu.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define CORDON__X86 1
#endif

/* 0 means "not detected yet"; a detected mask always has bit 31 set so that
 * an all-features-off mask is distinguishable from "unknown". */
#define DETECTED (1u << 31)
static _Atomic unsigned cached_mask;

static unsigned detect_hw(void)
{
    unsigned m = 0;
#ifdef CORDON__X86
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (c & bit_POPCNT)
        m |= CORDON_CPU_POPCNT;
    int osxsave = (c & bit_OSXSAVE) != 0;
    int avx = (c & bit_AVX) != 0;
    if (!osxsave || !avx)
        return m;
    unsigned xlo, xhi;
    __asm__ volatile("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    (void)xhi;
    int ymm_ok = (xlo & 0x6) == 0x6;
    int zmm_ok = (xlo & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return m;
    if (ymm_ok && (b & bit_AVX2))
        m |= CORDON_CPU_AVX2;
    if (zmm_ok && (b & bit_AVX512F) && (b & bit_AVX512BW) &&
        (b & bit_AVX512VL) && (c & bit_AVX512VPOPCNTDQ) && (b & bit_BMI2) &&
        (m & CORDON_CPU_AVX2))
        m |= CORDON_CPU_AVX512;
#endif
    return m;
}

static unsigned env_cap(void)
{
    const char *s = getenv("CORDON_SIMD");
    if (!s || !*s || strcmp(s, "auto") == 0)
        return ~0u;
    if (strcmp(s, "scalar") == 0)
        return 0;
    if (strcmp(s, "avx2") == 0)
        return CORDON_CPU_POPCNT | CORDON_CPU_AVX2;
    return ~0u;
}

unsigned cordon_cpu_features(void)
{
    unsigned m = atomic_load_explicit(&cached_mask, memory_order_relaxed);
    if (m == 0) {
        /* Racing threads compute the same value; the store is idempotent. */
        m = (detect_hw() & env_cap()) | DETECTED;
        atomic_store_explicit(&cached_mask, m, memory_order_relaxed);
    }
    return m & ~DETECTED;
}

unsigned cordon_cpu_set_features(unsigned mask)
{
    unsigned m = (detect_hw() & mask) | DETECTED;
    atomic_store_explicit(&cached_mask, m, memory_order_relaxed);
    return m & ~DETECTED;
}

const char *cordon_cpu_path_name(void)
{
    unsigned m = cordon_cpu_features();
    if (m & CORDON_CPU_AVX512)
        return "avx512";
    if (m & CORDON_CPU_AVX2)
        return "avx2";
    return "scalar";
}
