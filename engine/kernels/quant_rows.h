// What the weight-only quantized linear kernels share: x's rows quantized per group of 32 to int16
// (as llama.cpp's Q8_1 — a scale and the group's sum — but int16: int8 activations cost SmolLM2 4x the
// logit error of its int4 weights alone, 6.6 % against 1.8 %, int16 nothing measurable), and the loop
// that multiplies them into a layer's weight rows, one weight row read once for every row of x.
#pragma once

#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#endif

namespace {

constexpr int64_t GROUP = 32;

// A weight row PREFETCH_ROWS ahead of the one being multiplied (a layer's rows are consecutive in memory, each
// thread walks its own run of them) is asked into the cache now: left to the hardware prefetcher, the
// kernels waited on memory (SmolLM2's int4 layers at 7 GB/s on one Xeon core, 12 GB/s with this).
constexpr int64_t PREFETCH_ROWS = 8;

inline void prefetch_row_ahead(const void* row, int64_t bytes) {
  const char* ahead = static_cast<const char*>(row) + PREFETCH_ROWS * bytes;
  for (int64_t at = 0; at < bytes; at += 64) __builtin_prefetch(ahead + at);
}

inline float bf16_to_float(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// x's rows per group of 32: int16 values with a scale (x ≈ scale * q), plus the group's exact sum
// (which the weights' offsets m multiply).
struct QuantizedRows {
  std::vector<int16_t> q;
  std::vector<float> scale, sum;
};

// `paired`: each pair of groups (2p, 2p + 1) of a row laid out as their first halves, then their second
// halves — the order in which the AVX-512 int4 kernel unpacks two Q4_1 groups (k / 32 must be even).
// `out`'s buffers are reused: a decode step quantizes a few rows of each layer's input.
void quantize_rows(const float* x, int64_t rows, int64_t k, bool paired, QuantizedRows& out) {
  out.q.resize(rows * k);
  out.scale.resize(rows * k / GROUP);
  out.sum.resize(rows * k / GROUP);
  for (int64_t g = 0; g < rows * k / GROUP; ++g) {
    const float* xg = x + g * GROUP;
    float amax = 0.f, sum = 0.f;
    for (int j = 0; j < GROUP; ++j) {
      amax = std::max(amax, std::fabs(xg[j]));
      sum += xg[j];
    }
    const float scale = amax / 32767.f, inv = amax > 0.f ? 32767.f / amax : 0.f;
    // natural: value j at 32 g + j; paired: the pair's base, then half j / 16 (32 values), then the group's 16
    const int64_t base = paired ? (g & ~int64_t{1}) * GROUP + (g & 1) * 16 : g * GROUP;
    for (int j = 0; j < GROUP; ++j) {
      const int64_t at = paired ? base + (j / 16) * 32 + j % 16 : base + j;
      out.q[at] = static_cast<int16_t>(std::nearbyint(xg[j] * inv));
    }
    out.scale[g] = scale;
    out.sum[g] = sum;
  }
}
#if defined(__AVX2__) && defined(__FMA__)
inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

// y [rows, n] = x [rows, k] W^T, four rows of x at a time then the rest:
// row_dot(integral_constant<MB>, integral_constant<NB>, xq, first_row, first_out, y, y_stride) fills
// y[first_row .. + MB, first_out .. + NB]. With `blocked`, the kernel's loads of x are shared by
// weight rows: four for one row of x (a decode's), two for two, one for more (MB x NB accumulators).
template <typename RowDot>
void rows_times_weights(const float* x, int64_t rows, int64_t k, int64_t n, bool paired, float* y, RowDot&& row_dot,
                        bool blocked = false) {
  using std::integral_constant;
  thread_local QuantizedRows caller_rows;  // the caller's: the workers below read it through this reference
  QuantizedRows& xq = caller_rows;
  quantize_rows(x, rows, k, paired, xq);
  at::parallel_for(0, n, 16, [&](int64_t begin, int64_t end) {
    for (int64_t o = begin; o < end; o += 4) {
      const bool four = blocked && o + 4 <= end;
      const int64_t outs = std::min<int64_t>(4, end - o);
      const auto each_out = [&](auto mb, int64_t r) {
        for (int64_t b = 0; b < outs; ++b) row_dot(mb, integral_constant<int, 1>{}, xq, r, o + b, y + r * n + o + b, n);
      };
      int64_t r = 0;
      for (; r + 4 <= rows; r += 4) each_out(integral_constant<int, 4>{}, r);
      switch (rows - r) {
        case 3: each_out(integral_constant<int, 3>{}, r); break;
        case 2:
          if (!four) each_out(integral_constant<int, 2>{}, r);
          else
            for (int b = 0; b < 4; b += 2)
              row_dot(integral_constant<int, 2>{}, integral_constant<int, 2>{}, xq, r, o + b, y + r * n + o + b, n);
          break;
        case 1:
          if (!four) each_out(integral_constant<int, 1>{}, r);
          else row_dot(integral_constant<int, 1>{}, integral_constant<int, 4>{}, xq, r, o, y + r * n + o, n);
          break;
      }
    }
  });
}

// The same over a tensor: x [..., in] (any float dtype) -> [..., out] in x's dtype.
template <typename RowDot>
torch::Tensor rows_times_weights(const torch::Tensor& x, int64_t n, int64_t k, bool paired, RowDot&& row_dot,
                                 bool blocked = false) {
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == k, "x must be [..., ", k, "]");
  const torch::Tensor xf = x.to(torch::kFloat).contiguous();
  std::vector<int64_t> shape = x.sizes().vec();
  shape.back() = n;
  torch::Tensor y = torch::empty(shape, xf.options());
  rows_times_weights(xf.data_ptr<float>(), x.numel() / k, k, n, paired, y.data_ptr<float>(), row_dot, blocked);
  return x.scalar_type() == torch::kFloat ? y : y.to(x.scalar_type());
}

}  // namespace
