// The small per-layer operations of a step, each one pass over its rows instead of the handful of
// PyTorch ops (and their dispatch) they take in Python: RMS norm, rotary embedding and the gated MLP's
// SiLU(gate) * up. Each computes in float32 and rounds to the tensor's dtype once.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include "layer_rows.h"

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
  const int64_t tokens = x.size(0), heads = x.size(1), dim = x.size(2);
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
      for (int64_t t = begin; t < end; ++t)
        rotary_row(xp + t * heads * dim, op + t * heads * dim, heads, dim, cp + t * dim, sp + t * dim);
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
