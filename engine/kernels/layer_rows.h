// One row of each small per-layer operation (RMS norm, rotary embedding, SiLU(gate) * up), computed in
// float32 and rounded to the row's dtype once: the bodies of layer_ops.cpp's operators and the steps of
// the fused decoder layer (decode_layer.cpp), which must round where the operators do.
#pragma once

#include <torch/extension.h>

#include <cmath>

#include "vec.h"

namespace {

template <typename T>
inline float to_float(T x) { return static_cast<float>(x); }

template <typename scalar_t>
void rms_norm_row(const scalar_t* x, const float* weight, scalar_t* out, int64_t dim, float eps) {
#ifdef HAVE_VEC
  if constexpr (vec_loadable<scalar_t>) {
    if (dim % LANES == 0) {
      vec squares = vzero();
      for (int64_t i = 0; i < dim; i += LANES) squares = vfma(vload(x + i), vload(x + i), squares);
      const vec inv = vbroadcast(1.f / std::sqrt(hsum(squares) / dim + eps));
      for (int64_t i = 0; i < dim; i += LANES) vstore(out + i, vmul(vmul(vload(x + i), inv), vload(weight + i)));
      return;
    }
  }
#endif
  float squares = 0.f;
#pragma omp simd reduction(+ : squares)
  for (int64_t i = 0; i < dim; ++i) squares += to_float(x[i]) * to_float(x[i]);
  const float inv = 1.f / std::sqrt(squares / dim + eps);
#pragma omp simd
  for (int64_t i = 0; i < dim; ++i) out[i] = static_cast<scalar_t>(to_float(x[i]) * inv * weight[i]);
}

template <typename scalar_t>
void silu_mul_row(const scalar_t* gate, const scalar_t* up, scalar_t* out, int64_t inter) {
  int64_t i = 0;
#ifdef HAVE_VEC
  if constexpr (vec_loadable<scalar_t>) {
    for (; i + LANES <= inter; i += LANES) {
      const vec g = vload(gate + i);
      const vec silu = vdiv(g, vadd(vbroadcast(1.f), vexp(vmul(g, vbroadcast(-1.f)))));
      vstore(out + i, vmul(silu, vload(up + i)));
    }
  }
#endif
  for (; i < inter; ++i) {
    const float g = to_float(gate[i]);
    out[i] = static_cast<scalar_t>(g / (1.f + std::exp(-g)) * to_float(up[i]));
  }
}

// One token's heads, x [heads, dim] -> out (x itself allowed): x * cos + rotate_half(x) * sin,
// rotate_half(x) = cat(-x[dim / 2:], x[:dim / 2]); cos, sin: the token's [dim]. Rounded to out's dtype
// (a 16-bit KV cache's under float32 x).
template <typename scalar_t, typename out_t>
void rotary_row(const scalar_t* x, out_t* out, int64_t heads, int64_t dim, const float* cos, const float* sin) {
  const int64_t half = dim / 2;
  for (int64_t h = 0; h < heads; ++h) {
    const scalar_t* xh = x + h * dim;
    out_t* oh = out + h * dim;
    for (int64_t i = 0; i < half; ++i) {
      const float a = to_float(xh[i]), b = to_float(xh[i + half]);
      oh[i] = static_cast<out_t>(a * cos[i] - b * sin[i]);
      oh[i + half] = static_cast<out_t>(b * cos[i + half] + a * sin[i + half]);
    }
  }
}

}  // namespace
