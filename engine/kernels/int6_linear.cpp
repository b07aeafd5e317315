// 6-bit weights for an int4 model's token embeddings and LM head (one table when tied): the largest
// matrix of a small model, and the one every logit's error comes through — int4 there took SmolLM2's
// logit error from 1.7 % to 6.4 %, 6 bits to 2.5 %. llama.cpp's Q4_K_M mixes keep the output matrix
// at Q6_K for the same reason.
//
// Groups of 32 input weights, w = d * q + m with q in 0..63 (asymmetric, as Q4_1); d and m are 8-bit
// fractions of one bfloat16 (D, M) per row: d = D * du (du in 1..255), m = M * (mu - 128) — 6.5 bits a
// weight (Q6_K's 6.56, for rows that are not a multiple of 256).
// qs: uint8 [out, in / 2], q's low four bits laid out as Q4_1's nibbles (byte j of a group: q[j] in the
// low nibble, q[j + 16] in the high one); qh: uint8 [out, in / 4], q's top two bits, byte j of a group
// holding those of q[j], q[j + 8], q[j + 16], q[j + 24] at bits 0, 2, 4, 6; scales: uint8
// [out, in / 32, 2], each group's (du, mu); row_scales: bfloat16 [out, 2], each row's (D, M).
#include "quant_rows.h"

namespace {

struct Int6Weights {
  const uint8_t *qs, *qh, *scales;
  const uint16_t* row_scales;
  int64_t k;

  const uint8_t* nibbles(int64_t row) const { return qs + row * (k / 2); }
  const uint8_t* tops(int64_t row) const { return qh + row * (k / 4); }
  const uint8_t* group_scales(int64_t row) const { return scales + row * (k / GROUP) * 2; }
  float row_d(int64_t row) const { return bf16_to_float(row_scales[2 * row]); }
  float row_m(int64_t row) const { return bf16_to_float(row_scales[2 * row + 1]); }
};

#if defined(__AVX2__) && defined(__FMA__)
// One group's q as two vectors of bytes, q[0..15] and q[16..31]. The top bits' 8 bytes go to both 64-bit
// halves, each half shifted so that its weights' two bits land at bits 4-5 of their byte (bits shifted
// across a byte boundary are masked off): one shift a half, where a byte at a time took four.
inline void unpack_group(const uint8_t* nibbles, const uint8_t* tops, __m128i& first, __m128i& second) {
  const __m128i low4 = _mm_set1_epi8(0x0F), top_bits = _mm_set1_epi8(0x30);
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(nibbles));
  const __m128i top = _mm_castpd_si128(_mm_loaddup_pd(reinterpret_cast<const double*>(tops)));
  // q[j], j < 8: bits 0-1 of byte j, shifted up 4; q[j + 8]: bits 2-3, up 2
  first = _mm_or_si128(_mm_and_si128(bytes, low4), _mm_and_si128(_mm_sllv_epi64(top, _mm_set_epi64x(2, 4)), top_bits));
  // q[j + 16]: bits 4-5, in place; q[j + 24]: bits 6-7, down 2
  second = _mm_or_si128(_mm_and_si128(_mm_srli_epi16(bytes, 4), low4),
                        _mm_and_si128(_mm_srlv_epi64(top, _mm_set_epi64x(2, 0)), top_bits));
}
#endif

// One group's q in input order.
inline void unpack_group(const uint8_t* nibbles, const uint8_t* tops, uint8_t* q) {
#if defined(__AVX2__) && defined(__FMA__)
  __m128i first, second;
  unpack_group(nibbles, tops, first, second);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), first);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), second);
#else
  for (int j = 0; j < GROUP; ++j) {
    const int nibble = j < 16 ? nibbles[j] & 0x0F : nibbles[j - 16] >> 4;
    q[j] = static_cast<uint8_t>(nibble | ((tops[j % 8] >> (2 * (j / 8))) & 0x03) << 4);
  }
#endif
}

// y[r, n] for MB quantized rows of x and weight row n: sum over groups of d * xscale * (q . xq) + m * xsum.
template <int MB>
inline void dot_rows_int6(const QuantizedRows& x, int64_t row, const Int6Weights& w, int64_t n, float* y,
                          int64_t y_stride) {
  const int64_t groups = w.k / GROUP;
  const uint8_t *nibbles = w.nibbles(n), *tops = w.tops(n), *scales = w.group_scales(n);
  prefetch_row_ahead(nibbles, w.k / 2);
  prefetch_row_ahead(tops, w.k / 4);
  prefetch_row_ahead(scales, groups * 2);
  const float row_d = w.row_d(n), row_m = w.row_m(n);
  float offsets[MB] = {};
#if defined(__AVX2__) && defined(__FMA__)
  __m256 acc[MB];
  for (int r = 0; r < MB; ++r) acc[r] = _mm256_setzero_ps();
#else
  alignas(32) uint8_t q[GROUP];
  float acc[MB] = {};
#endif
  for (int64_t g = 0; g < groups; ++g, nibbles += 16, tops += 8, scales += 2) {
    const float d = row_d * scales[0], m = row_m * (static_cast<int>(scales[1]) - 128);
#if defined(__AVX2__) && defined(__FMA__)
    __m128i first, second;
    unpack_group(nibbles, tops, first, second);
    const __m256i w_first = _mm256_cvtepu8_epi16(first), w_second = _mm256_cvtepu8_epi16(second);
#else
    unpack_group(nibbles, tops, q);
#endif
    for (int r = 0; r < MB; ++r) {
      const int64_t xg = (row + r) * groups + g;
      const int16_t* xq = x.q.data() + xg * GROUP;
#if defined(__AVX2__) && defined(__FMA__)
      const __m256i dots =
          _mm256_add_epi32(_mm256_madd_epi16(w_first, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq))),
                           _mm256_madd_epi16(w_second, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 16))));
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dots), _mm256_set1_ps(d * x.scale[xg]), acc[r]);
#else
      int32_t dot = 0;
      for (int j = 0; j < GROUP; ++j) dot += q[j] * xq[j];
      acc[r] += d * x.scale[xg] * dot;
#endif
      offsets[r] += m * x.sum[xg];
    }
  }
#if defined(__AVX2__) && defined(__FMA__)
  for (int r = 0; r < MB; ++r) y[r * y_stride] = hsum(acc[r]) + offsets[r];
#else
  for (int r = 0; r < MB; ++r) y[r * y_stride] = acc[r] + offsets[r];
#endif
}

Int6Weights check_int6(const torch::Tensor& qs, const torch::Tensor& qh, const torch::Tensor& scales,
                       const torch::Tensor& row_scales) {
  TORCH_CHECK(qs.scalar_type() == torch::kUInt8 && qs.dim() == 2 && qs.is_contiguous() && qs.size(1) % 16 == 0,
              "int6: qs must be contiguous uint8 [out, in / 2], in a multiple of 32");
  const int64_t n = qs.size(0), k = qs.size(1) * 2;
  TORCH_CHECK(qh.scalar_type() == torch::kUInt8 && qh.is_contiguous() && qh.sizes() == at::IntArrayRef({n, k / 4}),
              "int6: qh must be contiguous uint8 [out, in / 4]");
  TORCH_CHECK(scales.scalar_type() == torch::kUInt8 && scales.is_contiguous() &&
                  scales.sizes() == at::IntArrayRef({n, k / GROUP, 2}),
              "int6: scales must be contiguous uint8 [out, in / 32, 2]");
  TORCH_CHECK(row_scales.scalar_type() == torch::kBFloat16 && row_scales.is_contiguous() &&
                  row_scales.sizes() == at::IntArrayRef({n, 2}),
              "int6: row_scales must be contiguous bfloat16 [out, 2]");
  return {qs.data_ptr<uint8_t>(), qh.data_ptr<uint8_t>(), scales.data_ptr<uint8_t>(),
          reinterpret_cast<const uint16_t*>(row_scales.data_ptr<at::BFloat16>()), k};
}

template <typename T>
void dequantize_rows(const Int6Weights& w, int64_t n, T* out) {
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    alignas(32) uint8_t q[GROUP];
    for (int64_t row = begin; row < end; ++row) {
      const uint8_t *nibbles = w.nibbles(row), *tops = w.tops(row), *scales = w.group_scales(row);
      const float row_d = w.row_d(row), row_m = w.row_m(row);
      T* o = out + row * w.k;
      for (int64_t g = 0; g < w.k / GROUP; ++g, nibbles += 16, tops += 8, scales += 2, o += GROUP) {
        unpack_group(nibbles, tops, q);
        const float d = row_d * scales[0], m = row_m * (static_cast<int>(scales[1]) - 128);
        for (int j = 0; j < GROUP; ++j) o[j] = static_cast<T>(d * q[j] + m);
      }
    }
  });
}

}  // namespace

// x: [..., in] (float32 or bfloat16) -> [..., out] in x's dtype.
torch::Tensor int6_linear(torch::Tensor x, torch::Tensor qs, torch::Tensor qh, torch::Tensor scales,
                          torch::Tensor row_scales) {
  const Int6Weights w = check_int6(qs, qh, scales, row_scales);
  return rows_times_weights(x, qs.size(0), w.k, false, [&](auto mb, auto nb, const QuantizedRows& xq, int64_t r,
                                                          int64_t o, float* y, int64_t stride) {
    for (int b = 0; b < decltype(nb)::value; ++b) dot_rows_int6<decltype(mb)::value>(xq, r, w, o + b, y + b, stride);
  });
}

// The weights [out, in] in `dtype` (float32 or bfloat16).
torch::Tensor int6_dequantize(torch::Tensor qs, torch::Tensor qh, torch::Tensor scales, torch::Tensor row_scales,
                              at::ScalarType dtype) {
  const Int6Weights w = check_int6(qs, qh, scales, row_scales);
  TORCH_CHECK(dtype == torch::kFloat || dtype == torch::kBFloat16, "int6_dequantize: float32 or bfloat16 only");
  torch::Tensor out = torch::empty({qs.size(0), w.k}, qs.options().dtype(dtype));
  if (dtype == torch::kFloat) dequantize_rows(w, qs.size(0), out.data_ptr<float>());
  else dequantize_rows(w, qs.size(0), out.data_ptr<at::BFloat16>());
  return out;
}

TORCH_LIBRARY_FRAGMENT(agentforge, m) {
  m.def("int6_linear(Tensor x, Tensor qs, Tensor qh, Tensor scales, Tensor row_scales) -> Tensor");
  m.impl("int6_linear", torch::kCPU, &int6_linear);
  m.def("int6_dequantize(Tensor qs, Tensor qh, Tensor scales, Tensor row_scales, ScalarType dtype) -> Tensor");
  m.impl("int6_dequantize", torch::kCPU, &int6_dequantize);
}
