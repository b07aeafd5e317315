// The small per-layer operations of a step, each one pass over its rows instead of the handful of
// PyTorch ops (and their dispatch) they take in Python: RMS norm, rotary embedding and the gated MLP's
// SiLU(gate) * up. Each computes in float32 and rounds to the tensor's dtype once.
#include <ATen/Parallel.h>
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

}  // namespace

// x: [..., dim] contiguous -> x / rms(x) * weight (or * (1 + weight), Gemma's unit offset).
torch::Tensor rms_norm(torch::Tensor x, torch::Tensor weight, double eps, bool unit_offset) {
  TORCH_CHECK(x.is_contiguous() && weight.is_contiguous() && weight.dim() == 1 && x.size(-1) == weight.size(0),
              "rms_norm: x must be contiguous [..., dim] and weight [dim]");
  const int64_t dim = x.size(-1), rows = x.numel() / dim;
  torch::Tensor out = torch::empty_like(x);
  const torch::Tensor w = (unit_offset ? weight.to(torch::kFloat) + 1 : weight.to(torch::kFloat)).contiguous();  // Gemma's 1 + w
  const float* wp = w.data_ptr<float>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "rms_norm", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        rms_norm_row(xp + r * dim, wp, op + r * dim, dim, static_cast<float>(eps));
    });
  });
  return out;
}

// x: [tokens, heads, dim] contiguous, cos/sin: [tokens, 1, dim] (cat(freqs, freqs)) ->
// x * cos + rotate_half(x) * sin, rotate_half(x) = cat(-x[dim / 2:], x[:dim / 2]).
torch::Tensor rotary(torch::Tensor x, torch::Tensor cos, torch::Tensor sin) {
  TORCH_CHECK(x.dim() == 3 && x.is_contiguous(), "rotary: x must be contiguous [tokens, heads, dim]");
  const int64_t tokens = x.size(0), heads = x.size(1), dim = x.size(2), half = dim / 2;
  TORCH_CHECK(dim % 2 == 0 && cos.sizes() == sin.sizes() && cos.numel() == tokens * dim,
              "rotary: cos and sin must be [tokens, 1, dim]");
  const torch::Tensor c = cos.to(torch::kFloat).contiguous(), s = sin.to(torch::kFloat).contiguous();
  const float* cp = c.data_ptr<float>();
  const float* sp = s.data_ptr<float>();
  torch::Tensor out = torch::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "rotary", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, tokens, 16, [&](int64_t begin, int64_t end) {
      for (int64_t t = begin; t < end; ++t) {
        const float* ct = cp + t * dim;
        const float* st = sp + t * dim;
        for (int64_t h = 0; h < heads; ++h) {
          const scalar_t* xh = xp + (t * heads + h) * dim;
          scalar_t* oh = op + (t * heads + h) * dim;
          for (int64_t i = 0; i < half; ++i) {
            const float a = to_float(xh[i]), b = to_float(xh[i + half]);
            oh[i] = static_cast<scalar_t>(a * ct[i] - b * st[i]);
            oh[i + half] = static_cast<scalar_t>(b * ct[i + half] + a * st[i + half]);
          }
        }
      }
    });
  });
  return out;
}

// gate_up: [rows, 2 * inter] contiguous (gate, then up) -> SiLU(gate) * up, [rows, inter].
torch::Tensor silu_mul(torch::Tensor gate_up) {
  TORCH_CHECK(gate_up.dim() == 2 && gate_up.is_contiguous() && gate_up.size(1) % 2 == 0,
              "silu_mul: gate_up must be contiguous [rows, 2 * inter]");
  const int64_t rows = gate_up.size(0), inter = gate_up.size(1) / 2;
  torch::Tensor out = torch::empty({rows, inter}, gate_up.options());
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, gate_up.scalar_type(), "silu_mul", [&] {
    const scalar_t* gp = gate_up.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows, 4, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) silu_mul_row(gp + r * 2 * inter, gp + r * 2 * inter + inter, op + r * inter, inter);
    });
  });
  return out;
}

TORCH_LIBRARY_FRAGMENT(agentforge, m) {
  m.def("rms_norm(Tensor x, Tensor weight, float eps, bool unit_offset) -> Tensor");
  m.impl("rms_norm", torch::kCPU, &rms_norm);
  m.def("rotary(Tensor x, Tensor cos, Tensor sin) -> Tensor");
  m.impl("rotary", torch::kCPU, &rotary);
  m.def("silu_mul(Tensor gate_up) -> Tensor");
  m.impl("silu_mul", torch::kCPU, &silu_mul);
}
