// Runtime SIMD dispatch: picks the ISA build of the kernel bodies once (see dispatch.h).
// Compiled once, without ISA flags: nothing here may use an instruction the baseline lacks.
#include "cpu/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace fastdl::cpu {

namespace {

// -1 until the first simd_level() call chooses.
std::atomic<int> g_level{-1};

// Set once, by the choice (under the function-local static in choose()).
std::string g_note;

// The x86 features the builds need (libgcc's checks include the OS saving the wider register
// state, XCR0). Off x86 there are none, and only the baseline build runs.
constexpr const char* kFeatures[] = {"avx2", "fma", "avx512f", "avx512vl", "avx512bw", "avx512dq"};

bool has(const char* feature) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // __builtin_cpu_supports needs a literal: one case per name of kFeatures.
  if (!std::strcmp(feature, "avx2")) return __builtin_cpu_supports("avx2");
  if (!std::strcmp(feature, "fma")) return __builtin_cpu_supports("fma");
  if (!std::strcmp(feature, "avx512f")) return __builtin_cpu_supports("avx512f");
  if (!std::strcmp(feature, "avx512vl")) return __builtin_cpu_supports("avx512vl");
  if (!std::strcmp(feature, "avx512bw")) return __builtin_cpu_supports("avx512bw");
  if (!std::strcmp(feature, "avx512dq")) return __builtin_cpu_supports("avx512dq");
#endif
  (void)feature;
  return false;
}

bool cpu_has(Isa isa) {
#if defined(__x86_64__) || defined(__i386__)
  switch (isa) {
    case Isa::baseline:
      return true;
    case Isa::avx2:
      return has("avx2") && has("fma");
    case Isa::avx512:
      return has("avx512f") && has("avx512vl") && has("avx512bw") && has("avx512dq") &&
             has("avx2") && has("fma");
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
    std::string names;
    for (int i = 0; i < kIsaCount; ++i) names += (i ? ", " : "") + std::string(isa_name(static_cast<Isa>(i)));
    g_note = std::string("FASTDL_SIMD=") + request + " is not one of " + names + "; using " +
             isa_name(best);
    return static_cast<int>(best);
  }();
  return chosen;
}

}  // namespace

const char* isa_name(Isa isa) {
#define FASTDL_ISA_NAME_(isa, _) #isa,
  static const char* const names[kIsaCount] = {FASTDL_ISAS(FASTDL_ISA_NAME_, )};
#undef FASTDL_ISA_NAME_
  const int i = static_cast<int>(isa);
  return i >= 0 && i < kIsaCount ? names[i] : "unknown";
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

const char* isa_build(Isa isa) {
#if defined(__x86_64__) || defined(__i386__)
  switch (isa) {
    case Isa::baseline:
      return "x86-64 (SSE2)";
    case Isa::avx2:
      return "AVX2 + FMA";
    case Isa::avx512:
      return "AVX-512 F/VL/BW/DQ + FMA";
  }
  return "unknown";
#else
  return isa == Isa::baseline ? "portable C++" : "portable C++ (never selected off x86)";
#endif
}

std::vector<std::pair<const char*, bool>> cpu_features() {
  std::vector<std::pair<const char*, bool>> out;
#if defined(__x86_64__) || defined(__i386__)
  for (const char* f : kFeatures) out.emplace_back(f, has(f));
#endif
  return out;
}

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
