// Weight-only int4 and int8 linear layers for a few rows at a time (decodes, draft verification),
// and the int4 dequantization larger batches take before a float matmul. x's rows are quantized to
// int16 per group of 32 (quant_rows.h); the dot products run in integers (AVX2: s16 x s16 pairs,
// AVX-512 VNNI: vpdpwssd), in float32 after.
//
// Weights are llama.cpp's Q4_1: groups of 32 input weights, w = d * q + m with q in 0..15.
// qs: uint8 [out, in / 2] — group g of row n is bytes [16 g, 16 g + 16), byte j holding q[j] in its
// low nibble and q[j + 16] in its high one; dm: bfloat16 [out, in / 32, 2], each group's (d, m).
// int8 weights: values [out, in] with one float32 scale per output row.
// One pass over the weights serves every row of x: a group is unpacked once and multiplied into
// each row's accumulator.
#include "kernels.h"
#include "quant_rows.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__)
#define HAVE_AVX512_VNNI 1
#endif

namespace {

// The group's 32 weights as floats, in input order.
inline void dequant_group(const uint8_t* q, const uint16_t* dm, float* w) {
  const float d = bf16_to_float(dm[0]), m = bf16_to_float(dm[1]);
#if defined(__AVX2__) && defined(__FMA__)
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
  const __m128i lo = _mm_and_si128(bytes, _mm_set1_epi8(0x0F));
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(bytes, 4), _mm_set1_epi8(0x0F));
  const __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
  const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
  for (int j = 0; j < 4; ++j)
    _mm256_storeu_ps(w + 8 * j, _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[j])), vd, vm));
#else
  for (int j = 0; j < 16; ++j) {
    w[j] = d * static_cast<float>(q[j] & 0x0F) + m;
    w[j + 16] = d * static_cast<float>(q[j] >> 4) + m;
  }
#endif
}

#if defined(__AVX2__) && defined(__FMA__)
// y[r, n + b] for MB quantized rows of x and NB consecutive weight rows: sum over groups of
// d * xscale * (q . xq) + m * xsum, the dot products in integers. A group's 16 bytes widen to 16-bit
// lanes once (lane j: q[j] in its low nibble, q[j + 16] in its high one), and each load of x serves NB
// weight rows: on an AVX2-only EPYC one row of x against SmolLM2's gate/up took 256 µs on one thread
// unpacked a nibble at a time into two widened vectors, one weight row at a time; now 225.
template <int MB, int NB>
inline void dot_rows(const QuantizedRows& x, int64_t row, int64_t k, const uint8_t* q, const uint16_t* dm, float* y,
                     int64_t y_stride) {
  const int64_t groups = k / GROUP;
  prefetch_row_ahead(q, NB * k / 2);
  prefetch_row_ahead(dm, NB * groups * 4);
  __m256 acc[MB][NB];
  float offsets[MB][NB] = {};
  for (int r = 0; r < MB; ++r)
    for (int b = 0; b < NB; ++b) acc[r][b] = _mm256_setzero_ps();
  const __m256i low_nibbles = _mm256_set1_epi16(0x0F);
  for (int64_t g = 0; g < groups; ++g) {
    __m256i x_low[MB], x_high[MB];
    float scale[MB], sum[MB];
    for (int r = 0; r < MB; ++r) {
      const int64_t xg = (row + r) * groups + g;
      const __m256i* xq = reinterpret_cast<const __m256i*>(x.q.data() + xg * GROUP);
      x_low[r] = _mm256_loadu_si256(xq), x_high[r] = _mm256_loadu_si256(xq + 1);
      scale[r] = x.scale[xg], sum[r] = x.sum[xg];
    }
    for (int b = 0; b < NB; ++b) {
      const uint16_t* dmb = dm + (b * groups + g) * 2;
      const float d = bf16_to_float(dmb[0]), m = bf16_to_float(dmb[1]);
      const __m256i lanes = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(q + b * (k / 2) + g * 16)));
      const __m256i w_low = _mm256_and_si256(lanes, low_nibbles), w_high = _mm256_srli_epi16(lanes, 4);  // q[0..15], q[16..31]
      for (int r = 0; r < MB; ++r) {
        const __m256i dots = _mm256_add_epi32(_mm256_madd_epi16(w_low, x_low[r]), _mm256_madd_epi16(w_high, x_high[r]));
        acc[r][b] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), _mm256_set1_ps(d * scale[r]), acc[r][b]);
        offsets[r][b] += m * sum[r];
      }
    }
  }
  for (int r = 0; r < MB; ++r)
    for (int b = 0; b < NB; ++b) y[r * y_stride + b] = hsum(acc[r][b]) + offsets[r][b];
}
constexpr bool kBlockedInt4 = true;
#else
template <int MB, int NB>
inline void dot_rows(const QuantizedRows& x, int64_t row, int64_t k, const uint8_t* q, const uint16_t* dm, float* y,
                     int64_t y_stride) {
  const int64_t groups = k / GROUP;
  for (int b = 0; b < NB; ++b, q += k / 2, dm += groups * 2)
    for (int r = 0; r < MB; ++r) {
      float total = 0.f;
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t xg = (row + r) * groups + g;
        const int16_t* xq = x.q.data() + xg * GROUP;
        int32_t dot = 0;
        for (int j = 0; j < 16; ++j) dot += (q[g * 16 + j] & 0x0F) * xq[j] + (q[g * 16 + j] >> 4) * xq[j + 16];
        total += bf16_to_float(dm[g * 2]) * x.scale[xg] * dot + bf16_to_float(dm[g * 2 + 1]) * x.sum[xg];
      }
      y[r * y_stride + b] = total;
    }
}
constexpr bool kBlockedInt4 = false;
#endif

#ifdef HAVE_AVX512_VNNI
constexpr bool kPairedInt4 = true;

// The AVX-512 VNNI form of dot_rows, for x quantized `paired`: two groups per step (32 packed bytes
// unpack into 64 int16 weights, two vpdpwssd), each group's d * xscale taken from a vector of 16
// groups' scales, the offsets (m * xsum) summed 16 groups at a time.
template <int MB>
inline void dot_rows_paired(const QuantizedRows& x, int64_t row, int64_t k, const uint8_t* q, const uint16_t* dm,
                            float* y, int64_t y_stride) {
  const int64_t groups = k / GROUP;
  prefetch_row_ahead(q, k / 2);
  prefetch_row_ahead(dm, groups * 4);
  __m512 acc[MB], offsets[MB], scales[MB];
  for (int r = 0; r < MB; ++r) acc[r] = offsets[r] = _mm512_setzero_ps();
  const __m256i low_nibbles = _mm256_set1_epi8(0x0F);
  const __m512i pair_lanes = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  for (int64_t first = 0; first < groups; first += 16) {
    const int64_t count = std::min<int64_t>(16, groups - first);
    const __mmask16 mask = static_cast<__mmask16>((1u << count) - 1);
    // (d, m) bfloat16 pairs, one per 32-bit lane: d is the low half, m the high one
    const __m512i pairs = _mm512_maskz_loadu_epi32(mask, dm + 2 * first);
    const __m512 d = _mm512_castsi512_ps(_mm512_slli_epi32(pairs, 16));
    const __m512 m = _mm512_castsi512_ps(_mm512_and_si512(pairs, _mm512_set1_epi32(static_cast<int>(0xFFFF0000u))));
    for (int r = 0; r < MB; ++r) {
      const int64_t xg = (row + r) * groups + first;
      scales[r] = _mm512_mul_ps(d, _mm512_maskz_loadu_ps(mask, x.scale.data() + xg));
      offsets[r] = _mm512_fmadd_ps(m, _mm512_maskz_loadu_ps(mask, x.sum.data() + xg), offsets[r]);
    }
    for (int64_t p = 0; p < count; p += 2) {
      const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + (first + p) * 16));
      const __m512i w_low = _mm512_cvtepu8_epi16(_mm256_and_si256(bytes, low_nibbles));  // q[0..15] of both groups
      const __m512i w_high = _mm512_cvtepu8_epi16(_mm256_and_si256(_mm256_srli_epi16(bytes, 4), low_nibbles));
      const __m512i lanes = _mm512_add_epi32(pair_lanes, _mm512_set1_epi32(static_cast<int>(p)));
      for (int r = 0; r < MB; ++r) {
        const int16_t* xq = x.q.data() + ((row + r) * groups + first + p) * GROUP;
        __m512i dots = _mm512_dpwssd_epi32(_mm512_setzero_si512(), w_low, _mm512_loadu_si512(xq));
        dots = _mm512_dpwssd_epi32(dots, w_high, _mm512_loadu_si512(xq + 32));
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), _mm512_permutexvar_ps(lanes, scales[r]), acc[r]);
      }
    }
  }
  for (int r = 0; r < MB; ++r) y[r * y_stride] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r], offsets[r]));
}
#else
constexpr bool kPairedInt4 = false;
#endif

// y[r, n] for MB quantized rows of x and one int8 weight row with one scale: the row's scale times
// the sum over groups of xscale * (w . xq).
template <int MB>
inline void dot_rows_int8(const QuantizedRows& x, int64_t row, int64_t k, const int8_t* w, float scale, float* y,
                          int64_t y_stride) {
  const int64_t groups = k / GROUP;
  prefetch_row_ahead(w, k);
#ifdef HAVE_AVX512_VNNI
  __m512 acc[MB];
  for (int r = 0; r < MB; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t g = 0; g < groups; ++g, w += GROUP) {
    const __m512i w16 = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
    for (int r = 0; r < MB; ++r) {
      const int64_t xg = (row + r) * groups + g;
      const __m512i dots = _mm512_dpwssd_epi32(_mm512_setzero_si512(), w16, _mm512_loadu_si512(x.q.data() + xg * GROUP));
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dots), _mm512_set1_ps(x.scale[xg]), acc[r]);
    }
  }
  for (int r = 0; r < MB; ++r) y[r * y_stride] = scale * _mm512_reduce_add_ps(acc[r]);
#elif defined(__AVX2__) && defined(__FMA__)
  __m256 acc[MB];
  for (int r = 0; r < MB; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t g = 0; g < groups; ++g, w += GROUP) {
    const __m256i w_low = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
    const __m256i w_high = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16)));
    for (int r = 0; r < MB; ++r) {
      const int64_t xg = (row + r) * groups + g;
      const __m256i* xq = reinterpret_cast<const __m256i*>(x.q.data() + xg * GROUP);
      const __m256i dots = _mm256_add_epi32(_mm256_madd_epi16(w_low, _mm256_loadu_si256(xq)),
                                            _mm256_madd_epi16(w_high, _mm256_loadu_si256(xq + 1)));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), _mm256_set1_ps(x.scale[xg]), acc[r]);
    }
  }
  for (int r = 0; r < MB; ++r) y[r * y_stride] = scale * hsum(acc[r]);
#else
  for (int r = 0; r < MB; ++r) {
    float total = 0.f;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t xg = (row + r) * groups + g;
      int32_t dot = 0;
      for (int j = 0; j < GROUP; ++j) dot += w[g * GROUP + j] * x.q[xg * GROUP + j];
      total += x.scale[xg] * dot;
    }
    y[r * y_stride] = scale * total;
  }
#endif
}

void check_weights(const torch::Tensor& qs, const torch::Tensor& dm) {
  TORCH_CHECK(qs.scalar_type() == torch::kUInt8 && qs.dim() == 2 && qs.is_contiguous(),
              "int4: qs must be contiguous uint8 [out, in / 2]");
  TORCH_CHECK(dm.scalar_type() == torch::kBFloat16 && dm.is_contiguous() && dm.dim() == 3 &&
                  dm.size(0) == qs.size(0) && dm.size(1) * 16 == qs.size(1) && dm.size(2) == 2,
              "int4: dm must be contiguous bfloat16 [out, in / 32, 2]");
}

// rows_times_weights' row_dot for int4 weights of k inputs; `paired` as x was quantized.
auto int4_row_dot(int64_t k, const uint8_t* qs, const uint16_t* dm, bool paired) {
  return [=](auto mb, auto nb, const QuantizedRows& xq, int64_t r, int64_t o, float* y, int64_t stride) {
    constexpr int MB = decltype(mb)::value, NB = decltype(nb)::value;
    const uint8_t* qo = qs + o * (k / 2);
    const uint16_t* dmo = dm + o * (k / GROUP) * 2;
#ifdef HAVE_AVX512_VNNI
    if (paired) {
      for (int b = 0; b < NB; ++b) dot_rows_paired<MB>(xq, r, k, qo + b * (k / 2), dmo + b * (k / GROUP) * 2, y + b, stride);
      return;
    }
#else
    (void)paired;
#endif
    dot_rows<MB, NB>(xq, r, k, qo, dmo, y, stride);
  };
}

auto int8_row_dot(int64_t k, const int8_t* values, const float* scales) {
  return [=](auto mb, auto nb, const QuantizedRows& xq, int64_t r, int64_t o, float* y, int64_t stride) {
    for (int b = 0; b < decltype(nb)::value; ++b)
      dot_rows_int8<decltype(mb)::value>(xq, r, k, values + (o + b) * k, scales[o + b], y + b, stride);
  };
}

bool int4_paired(int64_t k) { return kPairedInt4 && (k / GROUP) % 2 == 0; }

}  // namespace

void int4_linear_rows(const float* x, int64_t rows, int64_t k, const uint8_t* qs, const uint16_t* dm, int64_t n, float* y) {
  const bool paired = int4_paired(k);
  rows_times_weights(x, rows, k, n, paired, y, int4_row_dot(k, qs, dm, paired), kBlockedInt4 && !paired);
}

void int8_linear_rows(const float* x, int64_t rows, int64_t k, const int8_t* values, const float* scales, int64_t n,
                      float* y) {
  rows_times_weights(x, rows, k, n, false, y, int8_row_dot(k, values, scales));
}

// x: [..., in] (float32 or bfloat16) -> [..., out] in x's dtype.
torch::Tensor int4_linear(torch::Tensor x, torch::Tensor qs, torch::Tensor dm) {
  check_weights(qs, dm);
  const int64_t k = qs.size(1) * 2;
  const bool paired = int4_paired(k);
  return rows_times_weights(x, qs.size(0), k, paired, int4_row_dot(k, qs.data_ptr<uint8_t>(),
                            reinterpret_cast<const uint16_t*>(dm.data_ptr<at::BFloat16>()), paired), kBlockedInt4 && !paired);
}

// values: int8 [out, in] (in a multiple of 32), scales: float32 [out] -> x [..., in] times values^T, scaled.
torch::Tensor int8_linear(torch::Tensor x, torch::Tensor values, torch::Tensor scales) {
  TORCH_CHECK(values.scalar_type() == torch::kInt8 && values.dim() == 2 && values.is_contiguous() &&
                  values.size(1) % GROUP == 0, "int8_linear: values must be contiguous int8 [out, 32 k]");
  TORCH_CHECK(scales.scalar_type() == torch::kFloat && scales.is_contiguous() && scales.numel() == values.size(0),
              "int8_linear: scales must be float32 [out]");
  return rows_times_weights(x, values.size(0), values.size(1), false,
                            int8_row_dot(values.size(1), values.data_ptr<int8_t>(), scales.data_ptr<float>()));
}

// The float32 weights [out, in].
torch::Tensor int4_dequantize(torch::Tensor qs, torch::Tensor dm) {
  check_weights(qs, dm);
  const int64_t n = qs.size(0), k = qs.size(1) * 2;
  torch::Tensor w = torch::empty({n, k}, qs.options().dtype(torch::kFloat));
  const uint8_t* qp = qs.data_ptr<uint8_t>();
  const uint16_t* dmp = reinterpret_cast<const uint16_t*>(dm.data_ptr<at::BFloat16>());
  float* wp = w.data_ptr<float>();
  at::parallel_for(0, n * (k / GROUP), 256, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) dequant_group(qp + g * 16, dmp + g * 2, wp + g * GROUP);
  });
  return w;
}

TORCH_LIBRARY_FRAGMENT(agentforge, m) {
  m.def("int4_linear(Tensor x, Tensor qs, Tensor dm) -> Tensor");
  m.impl("int4_linear", torch::kCPU, &int4_linear);
  m.def("int8_linear(Tensor x, Tensor values, Tensor scales) -> Tensor");
  m.impl("int8_linear", torch::kCPU, &int8_linear);
  m.def("int4_dequantize(Tensor qs, Tensor dm) -> Tensor");
  m.impl("int4_dequantize", torch::kCPU, &int4_dequantize);
}
