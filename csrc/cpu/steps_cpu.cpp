// CPU kernels of the fused ops (affine_noise, ddpm_step, q_sample_pairs; philox_words), registered for the CPU
// dispatch key at the bottom: one pass over the inputs, noise drawn in-kernel.
//
// Work is split over Philox counters ("items": counter c of sample b covers elements 4c..4c+3 of that sample)
// with at::parallel_for. Each chunk of items first fills a small stack buffer with its normals (the Philox words
// with AVX-512 intrinsics where the CPU has them, else a loop the compiler vectorises; then Box-Muller in a
// structure-of-arrays loop, an AVX-512 or AVX2 clone picked at run time where the CPU has it), packed in element
// order, then walks the samples the chunk overlaps, so the per-sample coefficients
// are loop invariants of a plain contiguous loop (apply_span / pair_span: AVX-512, AVX2 and baseline clones chosen
// at run time, floating-point contraction off, so every clone gives the baseline's bits).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <torch/library.h>

#include <algorithm>
#include <cstdlib>

#include "../common/step_args.h"

namespace fastddgan {
namespace {

constexpr int64_t kChunkCounters = 128;   // 512 elements of noise on the stack per chunk
constexpr int64_t kGrainCounters = 4096;  // below 16k elements one thread does it all

// Items [first, first + n) of a call whose samples have `per_sample` counters each.
struct ItemRange {
  int64_t first, n, per_sample, inner;
  int64_t sample(int64_t item) const { return item / per_sample; }
  int64_t counter(int64_t item) const { return item % per_sample; }
  // the flat index of the item's first element, and how many of its 4 lanes are elements
  int64_t element(int64_t item) const { return sample(item) * inner + 4 * counter(item); }
  int64_t lanes(int64_t item) const { return std::min<int64_t>(4, inner - 4 * counter(item)); }
};

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define FDG_MULTIVERSION __attribute__((target_clones("avx512f", "avx2", "default")))
#define FDG_AVX512_PHILOX 1
#include <immintrin.h>
#else
#define FDG_MULTIVERSION
#define FDG_AVX512_PHILOX 0
#endif

// The elementwise loops of the ops (apply_span, pair_span) and Box-Muller are built three times, for AVX-512, AVX2
// (both with FMA) and the baseline, and one is chosen at run time (span_isa), with floating-point contraction off
// in every clone: no multiply and add is fused into an FMA unless the code says so (Box-Muller's fmadd, correctly
// rounded on every path), so each clone rounds every operation as the baseline build does and the outputs are the
// same bits whichever runs. FASTDDGAN_CPU_NO_AVX512=1 / FASTDDGAN_CPU_NO_AVX2=1 force a narrower
// clone (tests compare them).
#if FDG_AVX512_PHILOX
#define FDG_SPAN_CLONE(isa) __attribute__((target(isa), optimize("fp-contract=off"), noinline))
#define FDG_SPAN_DEFAULT __attribute__((optimize("fp-contract=off"), noinline))
#define FDG_SPAN_AVX512 "avx512f,avx512bw,avx512dq,avx512vl"
enum class SpanIsa { kDefault, kAvx2, kAvx512 };
SpanIsa span_isa() {
  static const SpanIsa isa = [] {
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                      std::getenv("FASTDDGAN_CPU_NO_AVX2") == nullptr;
    const bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                        std::getenv("FASTDDGAN_CPU_NO_AVX512") == nullptr;
    return avx512 ? SpanIsa::kAvx512 : (avx2 ? SpanIsa::kAvx2 : SpanIsa::kDefault);
  }();
  return isa;
}
#define FDG_SPAN_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define FDG_SPAN_ALWAYS_INLINE inline
#endif

// The normals of a chunk come in two stages: the Philox words of its counters (integer arithmetic, so every
// implementation gives the same bits), then Box-Muller on them (the float code of csrc/common/philox.h).
struct ChunkWords {
  uint32_t r[4][kChunkCounters];  // r[w][j]: word w of counter j
};

// Words of counters[0..n) one counter at a time (a loop the compiler vectorises where it can).
FDG_MULTIVERSION void philox_words_portable(uint64_t key, const uint64_t* __restrict counters, int64_t n,
                                            ChunkWords* __restrict words) {
  for (int64_t j = 0; j < n; ++j) {
    uint32_t r[4];
    philox4x32_10(counters[j], key, r);
    for (int w = 0; w < 4; ++w) words->r[w][j] = r[w];
  }
}

#if FDG_AVX512_PHILOX
// Philox4x32-10 of 8 V counters at once, one counter per 64-bit lane (the 32-bit counter words in its low half):
// _mm512_mul_epu32 gives the full 64-bit products of the low halves, so each round is two multiplies, two shifts
// and two three-way XORs per vector. The high halves of c1 and c3 hold the products' high words, which only ever
// reach high halves again (the multiplies read low halves; XOR is per bit); the words are the low halves. V
// independent vectors per round hide the multiplies' latency.
template <int V>
__attribute__((target("avx512f"), always_inline)) inline void philox_avx512_lanes(
    uint64_t key, const uint64_t* counters, ChunkWords* words, int64_t j) {
  __m512i c0[V], c1[V], c2[V], c3[V];
  for (int v = 0; v < V; ++v) {
    c0[v] = _mm512_loadu_si512(counters + j + 8 * v);  // (lo32, hi32) = the counter's words (c0, c1)
    c1[v] = _mm512_srli_epi64(c0[v], 32);
    c2[v] = _mm512_setzero_si512();
    c3[v] = _mm512_setzero_si512();
  }
  const __m512i round_a = _mm512_set1_epi64(0xD2511F53u), round_b = _mm512_set1_epi64(0xCD9E8D57u);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    const __m512i key0 = _mm512_set1_epi64(k0), key1 = _mm512_set1_epi64(k1);
    for (int v = 0; v < V; ++v) {  // the rounds of philox4x32_10_words, XOR as ternary logic 0x96
      const __m512i pb = _mm512_mul_epu32(c2[v], round_b), pa = _mm512_mul_epu32(c0[v], round_a);
      c0[v] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(pb, 32), c1[v], key0, 0x96);
      c2[v] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(pa, 32), c3[v], key1, 0x96);
      c1[v] = pb;
      c3[v] = pa;
    }
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  for (int v = 0; v < V; ++v) {
    const __m512i* c[4] = {&c0[v], &c1[v], &c2[v], &c3[v]};
    for (int w = 0; w < 4; ++w) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(words->r[w] + j + 8 * v), _mm512_cvtepi64_epi32(*c[w]));
    }
  }
}

__attribute__((target("avx512f"))) void philox_words_avx512(uint64_t key, const uint64_t* __restrict counters,
                                                             int64_t n, ChunkWords* __restrict words) {
  int64_t j = 0;
  for (; j + 32 <= n; j += 32) philox_avx512_lanes<4>(key, counters, words, j);
  for (; j + 8 <= n; j += 8) philox_avx512_lanes<1>(key, counters, words, j);
  for (; j < n; ++j) {
    uint32_t r[4];
    philox4x32_10(counters[j], key, r);
    for (int w = 0; w < 4; ++w) words->r[w][j] = r[w];
  }
}

// FASTDDGAN_CPU_NO_AVX512=1 takes the portable path on an AVX-512 CPU (tests compare the two).
bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && std::getenv("FASTDDGAN_CPU_NO_AVX512") == nullptr;
  return has;
}
#endif

// buf[4 j + lane] = normal `lane` of words j (Box-Muller, see csrc/common/philox.h), for j < n <= kChunkCounters:
// a structure-of-arrays loop the compiler vectorises, then the lanes interleaved.
FDG_SPAN_ALWAYS_INLINE void box_muller_loop(const ChunkWords* __restrict words, int64_t n, float* __restrict buf) {
  float lane0[kChunkCounters], lane1[kChunkCounters], lane2[kChunkCounters], lane3[kChunkCounters];
  const uint32_t *r0 = words->r[0], *r1 = words->r[1], *r2 = words->r[2], *r3 = words->r[3];
  for (int64_t j = 0; j < n; ++j) {
    const uint32_t r[4] = {r0[j], r1[j], r2[j], r3[j]};
    float normals[4];
    box_muller4(r, normals);
    lane0[j] = normals[0];
    lane1[j] = normals[1];
    lane2[j] = normals[2];
    lane3[j] = normals[3];
  }
  for (int64_t j = 0; j < n; ++j) {
    buf[4 * j + 0] = lane0[j];
    buf[4 * j + 1] = lane1[j];
    buf[4 * j + 2] = lane2[j];
    buf[4 * j + 3] = lane3[j];
  }
}

#if FDG_AVX512_PHILOX
FDG_SPAN_CLONE(FDG_SPAN_AVX512 ",fma") void box_muller_avx512(const ChunkWords* words, int64_t n, float* buf) {
  box_muller_loop(words, n, buf);
}
FDG_SPAN_CLONE("avx2,fma") void box_muller_avx2(const ChunkWords* words, int64_t n, float* buf) {
  box_muller_loop(words, n, buf);
}
FDG_SPAN_DEFAULT void box_muller_default(const ChunkWords* words, int64_t n, float* buf) {
  box_muller_loop(words, n, buf);
}
#endif

// Box-Muller in the clone span_isa picks (all give the same bits: the polynomials' fmas are explicit).
void box_muller(const ChunkWords* words, int64_t n, float* buf) {
#if FDG_AVX512_PHILOX
  switch (span_isa()) {
    case SpanIsa::kAvx512: return box_muller_avx512(words, n, buf);
    case SpanIsa::kAvx2: return box_muller_avx2(words, n, buf);
    default: return box_muller_default(words, n, buf);
  }
#else
  box_muller_loop(words, n, buf);
#endif
}

// buf[4 j + lane] = normal `lane` of the Philox counters counters[j], for j < n <= kChunkCounters.
void fill_normals(uint64_t key, const uint64_t* __restrict counters, int64_t n, float* __restrict buf) {
  ChunkWords words;
#if FDG_AVX512_PHILOX
  if (cpu_has_avx512()) {
    philox_words_avx512(key, counters, n, &words);
  } else {
    philox_words_portable(key, counters, n, &words);
  }
#else
  philox_words_portable(key, counters, n, &words);
#endif
  box_muller(&words, n, buf);
}

// The normals of `items`, in element order (the lanes past a sample's last element dropped).
void item_normals(uint64_t key, uint64_t sample_offset, const ItemRange& items, float* __restrict buf) {
  uint64_t counters[kChunkCounters];
  uint64_t row = static_cast<uint64_t>(items.sample(items.first)) + sample_offset;
  int64_t counter = items.counter(items.first);
  // Philox counter (c, b + sample_offset), c < 2^32: see fastddgan/ops/philox.py
  if (counter + items.n <= items.per_sample && items.per_sample <= (int64_t(1) << 32)) {  // within one sample
    const uint64_t first = (row << 32) | static_cast<uint64_t>(counter);
    for (int64_t j = 0; j < items.n; ++j) counters[j] = first + static_cast<uint64_t>(j);
  } else {
    for (int64_t j = 0; j < items.n; ++j) {
      counters[j] = (row << 32) | static_cast<uint64_t>(counter);
      if (++counter == items.per_sample) {
        counter = 0;
        ++row;
      }
    }
  }
  fill_normals(key, counters, items.n, buf);
  if (items.inner % 4 == 0) return;  // every lane is an element: already in element order
  int64_t packed = 0;
  for (int64_t j = 0; j < items.n; ++j) {
    const int64_t lanes = items.lanes(items.first + j);
    for (int64_t lane = 0; lane < lanes; ++lane) buf[packed++] = buf[4 * j + lane];
  }
}

// A_SCALAR: `a` is one value expanded to the data's shape (StepArgs::a_scalar), read once.
template <bool A_SCALAR, typename Op, typename scalar_t, typename acc_t, typename noise_t>
FDG_SPAN_ALWAYS_INLINE void apply_span_loop(const Op& op, const acc_t* coef, const scalar_t* __restrict a,
                                            const scalar_t* __restrict b, const noise_t* __restrict n,
                                            scalar_t* __restrict out, int64_t len) {
  const acc_t a0 = A_SCALAR ? static_cast<acc_t>(a[0]) : acc_t(0);
  for (int64_t k = 0; k < len; ++k) {
    acc_t bk = acc_t(0);
    if constexpr (Op::kHasB) bk = static_cast<acc_t>(b[k]);
    const acc_t ak = A_SCALAR ? a0 : static_cast<acc_t>(a[k]);
    out[k] = static_cast<scalar_t>(op(coef, ak, bk, static_cast<acc_t>(n[k])));
  }
}

// q_sample_pairs: both members of a true pair per element, x_t from x_prev as stored (csrc/common/step_args.h),
// each through the affine op of the two calls it replaces (the same arithmetic, so the same bits).
template <typename scalar_t, typename noise_t>
FDG_SPAN_ALWAYS_INLINE void pair_span_loop(const at::opmath_type<scalar_t>* coef, const scalar_t* __restrict x0,
                                           const noise_t* __restrict n_prev, const noise_t* __restrict n_step,
                                           scalar_t* __restrict x_prev, scalar_t* __restrict x_t, int64_t len) {
  using acc_t = at::opmath_type<scalar_t>;
  const AffineNoiseOp<false> op;
  const acc_t prev[3] = {coef[0], acc_t(0), coef[1]}, step[3] = {coef[2], acc_t(0), coef[3]};
  for (int64_t k = 0; k < len; ++k) {
    const scalar_t p =
        static_cast<scalar_t>(op(prev, static_cast<acc_t>(x0[k]), acc_t(0), static_cast<acc_t>(n_prev[k])));
    x_prev[k] = p;
    x_t[k] = static_cast<scalar_t>(op(step, static_cast<acc_t>(p), acc_t(0), static_cast<acc_t>(n_step[k])));
  }
}

#if FDG_AVX512_PHILOX
// The clones of the two loops (see span_isa) and the run-time choice between them.
#define FDG_SPAN_CLONES(SUFFIX, ATTR)                                                                          \
  template <bool A_SCALAR, typename Op, typename scalar_t, typename acc_t, typename noise_t>                  \
  ATTR void apply_span_##SUFFIX(const Op& op, const acc_t* coef, const scalar_t* a, const scalar_t* b,        \
                                const noise_t* n, scalar_t* out, int64_t len) {                               \
    apply_span_loop<A_SCALAR>(op, coef, a, b, n, out, len);                                                   \
  }                                                                                                           \
  template <typename scalar_t, typename noise_t>                                                              \
  ATTR void pair_span_##SUFFIX(const at::opmath_type<scalar_t>* coef, const scalar_t* x0, const noise_t* n_prev, \
                               const noise_t* n_step, scalar_t* x_prev, scalar_t* x_t, int64_t len) {         \
    pair_span_loop<scalar_t>(coef, x0, n_prev, n_step, x_prev, x_t, len);                                     \
  }
FDG_SPAN_CLONES(avx512, FDG_SPAN_CLONE(FDG_SPAN_AVX512))
FDG_SPAN_CLONES(avx2, FDG_SPAN_CLONE("avx2"))
FDG_SPAN_CLONES(default, FDG_SPAN_DEFAULT)
#undef FDG_SPAN_CLONES
#endif

template <bool A_SCALAR, typename Op, typename scalar_t, typename acc_t, typename noise_t>
inline void apply_span(const Op& op, const acc_t* coef, const scalar_t* a, const scalar_t* b, const noise_t* n,
                       scalar_t* out, int64_t len) {
#if FDG_AVX512_PHILOX
  switch (span_isa()) {
    case SpanIsa::kAvx512: return apply_span_avx512<A_SCALAR>(op, coef, a, b, n, out, len);
    case SpanIsa::kAvx2: return apply_span_avx2<A_SCALAR>(op, coef, a, b, n, out, len);
    default: return apply_span_default<A_SCALAR>(op, coef, a, b, n, out, len);
  }
#else
  apply_span_loop<A_SCALAR>(op, coef, a, b, n, out, len);
#endif
}

template <typename scalar_t, typename noise_t>
inline void pair_span(const at::opmath_type<scalar_t>* coef, const scalar_t* x0, const noise_t* n_prev,
                      const noise_t* n_step, scalar_t* x_prev, scalar_t* x_t, int64_t len) {
#if FDG_AVX512_PHILOX
  switch (span_isa()) {
    case SpanIsa::kAvx512: return pair_span_avx512<scalar_t>(coef, x0, n_prev, n_step, x_prev, x_t, len);
    case SpanIsa::kAvx2: return pair_span_avx2<scalar_t>(coef, x0, n_prev, n_step, x_prev, x_t, len);
    default: return pair_span_default<scalar_t>(coef, x0, n_prev, n_step, x_prev, x_t, len);
  }
#else
  pair_span_loop<scalar_t>(coef, x0, n_prev, n_step, x_prev, x_t, len);
#endif
}

// The span with the explicit noise when given, else with the in-kernel normals of buf.
template <bool A_SCALAR, typename Op, typename scalar_t, typename acc_t>
inline void apply_sample_span(const Op& op, const acc_t* coef, const scalar_t* a, const scalar_t* b,
                              const scalar_t* noise, const float* buf, scalar_t* out, int64_t len) {
  if (noise != nullptr) {
    apply_span<A_SCALAR>(op, coef, a, b, noise, out, len);
  } else {
    apply_span<A_SCALAR>(op, coef, a, b, buf, out, len);
  }
}

template <typename Op, typename scalar_t>
void run_step(const StepArgs& args, const Op& op) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t numel = args.a.numel();
  if (numel == 0) return;
  const scalar_t* a = args.a.const_data_ptr<scalar_t>();
  const scalar_t* b = args.b.defined() ? args.b.const_data_ptr<scalar_t>() : nullptr;
  const scalar_t* noise = args.noise.defined() ? args.noise.const_data_ptr<scalar_t>() : nullptr;
  const int64_t* seed = args.seed.defined() ? args.seed.const_data_ptr<int64_t>() : nullptr;
  const uint64_t key = seed != nullptr ? static_cast<uint64_t>(seed[0]) : 0;
  const uint64_t sample_offset = seed != nullptr ? static_cast<uint64_t>(seed[1]) : 0;
  const int64_t* t = args.t.const_data_ptr<int64_t>();
  const acc_t* table = args.table.const_data_ptr<acc_t>();
  scalar_t* out = args.out.mutable_data_ptr<scalar_t>();
  const int64_t inner = args.inner, steps = args.steps;

  const int64_t per_sample = (inner + 3) / 4;
  at::parallel_for(0, args.batch * per_sample, kGrainCounters, [&](int64_t begin, int64_t end) {
    float buf[4 * kChunkCounters];
    for (int64_t c = begin; c < end; c += kChunkCounters) {
      const ItemRange items{c, std::min(kChunkCounters, end - c), per_sample, inner};
      const int64_t last_item = items.first + items.n - 1;
      const int64_t first = items.element(items.first), last = items.element(last_item) + items.lanes(last_item);
      if (noise == nullptr) item_normals(key, sample_offset, items, buf);
      for (int64_t i = first; i < last;) {
        const int64_t sample = i / inner;
        const int64_t stop = std::min(last, (sample + 1) * inner);
        const int64_t step = clamp_step(t[sample], steps);
        acc_t coef[Op::kRows];
        for (int r = 0; r < Op::kRows; ++r) coef[r] = table[r * steps + step];
        const scalar_t* b_i = b != nullptr ? b + i : nullptr;
        const scalar_t* noise_i = noise != nullptr ? noise + i : nullptr;
        if (args.a_scalar) {
          apply_sample_span<true>(op, coef, a, b_i, noise_i, buf + (i - first), out + i, stop - i);
        } else {
          apply_sample_span<false>(op, coef, a + i, b_i, noise_i, buf + (i - first), out + i, stop - i);
        }
        i = stop;
      }
    }
  });
}

template <typename scalar_t>
void run_pair_kernel(const PairArgs& args) {
  using acc_t = at::opmath_type<scalar_t>;
  if (args.x0.numel() == 0) return;
  const scalar_t* x0 = args.x0.const_data_ptr<scalar_t>();
  const bool explicit_noise = args.noise_prev.defined();
  const scalar_t* noise_prev = explicit_noise ? args.noise_prev.const_data_ptr<scalar_t>() : nullptr;
  const scalar_t* noise_step = explicit_noise ? args.noise_step.const_data_ptr<scalar_t>() : nullptr;
  const int64_t* seed = explicit_noise ? nullptr : args.seed.const_data_ptr<int64_t>();  // rows [key, offset]
  const int64_t* t = args.t.const_data_ptr<int64_t>();
  const acc_t* table = args.table.const_data_ptr<acc_t>();
  scalar_t* x_prev = args.x_prev.mutable_data_ptr<scalar_t>();
  scalar_t* x_t = args.x_t.mutable_data_ptr<scalar_t>();
  const int64_t inner = args.inner, steps = args.steps;

  const int64_t per_sample = (inner + 3) / 4;
  at::parallel_for(0, args.batch * per_sample, kGrainCounters, [&](int64_t begin, int64_t end) {
    float buf_prev[4 * kChunkCounters], buf_step[4 * kChunkCounters];
    for (int64_t c = begin; c < end; c += kChunkCounters) {
      const ItemRange items{c, std::min(kChunkCounters, end - c), per_sample, inner};
      const int64_t last_item = items.first + items.n - 1;
      const int64_t first = items.element(items.first), last = items.element(last_item) + items.lanes(last_item);
      if (!explicit_noise) {
        item_normals(static_cast<uint64_t>(seed[0]), static_cast<uint64_t>(seed[1]), items, buf_prev);
        item_normals(static_cast<uint64_t>(seed[2]), static_cast<uint64_t>(seed[3]), items, buf_step);
      }
      for (int64_t i = first; i < last;) {
        const int64_t sample = i / inner;
        const int64_t stop = std::min(last, (sample + 1) * inner);
        const int64_t step = clamp_step(t[sample], steps);
        acc_t coef[4];
        for (int r = 0; r < 4; ++r) coef[r] = table[r * steps + step];
        if (explicit_noise) {
          pair_span<scalar_t>(coef, x0 + i, noise_prev + i, noise_step + i, x_prev + i, x_t + i, stop - i);
        } else {
          pair_span<scalar_t>(coef, x0 + i, buf_prev + (i - first), buf_step + (i - first), x_prev + i, x_t + i,
                              stop - i);
        }
        i = stop;
      }
    }
  });
}

}  // namespace

// The CPU backend of the step entry points (csrc/common/step_args.h).
struct CpuKernels {
  static constexpr c10::DeviceType kDevice = c10::DeviceType::CPU;
  template <typename Op>
  static void run(const StepArgs& args, const Op& op);
  static void philox_words(const at::Tensor& counters, uint32_t k0, uint32_t k1, at::Tensor& out);
  static void run_pairs(const PairArgs& args);
};

void CpuKernels::run_pairs(const PairArgs& args) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.x0.scalar_type(), "fastddgan_pairs_cpu",
                                  [&] { run_pair_kernel<scalar_t>(args); });
}

template <typename Op>
void CpuKernels::run(const StepArgs& args, const Op& op) {
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, args.a.scalar_type(), "fastddgan_step_cpu",
                                  [&] { run_step<Op, scalar_t>(args, op); });
}

void CpuKernels::philox_words(const at::Tensor& counters, uint32_t k0, uint32_t k1, at::Tensor& out) {
  const int64_t* c = counters.const_data_ptr<int64_t>();
  int64_t* w = out.mutable_data_ptr<int64_t>();
  for (int64_t i = 0; i < counters.size(0); ++i) {
    const uint32_t ctr[4] = {static_cast<uint32_t>(c[4 * i]), static_cast<uint32_t>(c[4 * i + 1]),
                             static_cast<uint32_t>(c[4 * i + 2]), static_cast<uint32_t>(c[4 * i + 3])};
    uint32_t r[4];
    philox4x32_10_words(ctr, k0, k1, r);
    for (int j = 0; j < 4; ++j) w[4 * i + j] = static_cast<int64_t>(r[j]);
  }
}

TORCH_LIBRARY_IMPL(fastddgan, CPU, m) {
  m.impl("affine_noise", TORCH_FN(affine_noise_entry<CpuKernels>));
  m.impl("ddpm_step", TORCH_FN(ddpm_step_entry<CpuKernels>));
  m.impl("q_sample_pairs", TORCH_FN(q_sample_pairs_entry<CpuKernels>));
  m.impl("philox_words", TORCH_FN(philox_words_entry<CpuKernels>));
}

}  // namespace fastddgan
