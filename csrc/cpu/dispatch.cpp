// Runtime SIMD dispatch: picks the ISA build of the kernel bodies once (see dispatch.h).
// Compiled once, without ISA flags: nothing here may use an instruction the baseline lacks.
#include "cpu/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

namespace fastdl::cpu {

namespace {

// -1 until the first simd_level() call chooses.
std::atomic<int> g_level{-1};

// Set once, by the choice (under the function-local static in choose()).
std::string g_note;

bool cpu_has(Isa isa) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  switch (isa) {
    case Isa::baseline:
      return true;
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::avx512:
      // libgcc's checks include the OS saving the wider register state (XCR0).
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  }
  return false;
#else
  // Off x86 the "avx2" and "avx512" builds carry no ISA flags but are never selected.
  return isa == Isa::baseline;
#endif
}

Isa best_supported() {
  for (int i = kIsaCount - 1; i > 0; --i) {
    if (cpu_has(static_cast<Isa>(i))) return static_cast<Isa>(i);
  }
  return Isa::baseline;
}

// The best supported ISA, or the one FASTDL_SIMD asks for when the processor can run it.
int choose() {
  static const int chosen = [] {
    const Isa best = best_supported();
    const char* request = std::getenv("FASTDL_SIMD");
    if (request == nullptr || request[0] == '\0') return static_cast<int>(best);
    for (int i = 0; i < kIsaCount; ++i) {
      const Isa isa = static_cast<Isa>(i);
      if (std::strcmp(request, isa_name(isa)) != 0) continue;
      if (cpu_has(isa)) return i;
      g_note = std::string("FASTDL_SIMD=") + request +
               " is not supported by this processor; using " + isa_name(best);
      return static_cast<int>(best);
    }
    g_note = std::string("FASTDL_SIMD=") + request +
             " is not one of baseline, avx2, avx512; using " + isa_name(best);
    return static_cast<int>(best);
  }();
  return chosen;
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::baseline:
      return "baseline";
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
  }
  return "unknown";
}

Isa simd_level() {
  int level = g_level.load(std::memory_order_relaxed);
  if (level < 0) {
    level = choose();
    int expected = -1;  // a concurrent set_simd_level wins over the first choice
    if (!g_level.compare_exchange_strong(expected, level, std::memory_order_relaxed)) {
      level = expected;
    }
  }
  return static_cast<Isa>(level);
}

bool isa_supported(Isa isa) { return cpu_has(isa); }

bool set_simd_level(Isa isa) {
  if (!cpu_has(isa)) return false;
  choose();  // record the environment's note even when tests switch first
  g_level.store(static_cast<int>(isa), std::memory_order_relaxed);
  return true;
}

const char* simd_note() {
  choose();
  return g_note.c_str();
}

}  // namespace fastdl::cpu
