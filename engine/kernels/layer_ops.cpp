// The small per-layer operations of a decode step, each one pass over its rows instead of the
// handful of PyTorch ops (and their dispatch) they take in Python: RMS norm and rotary embedding.
// Both compute in float32 and round to the tensor's dtype once.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <cmath>

namespace {

template <typename T>
inline float to_float(T x) { return static_cast<float>(x); }

}  // namespace

// x: [..., dim] contiguous -> x / rms(x) * weight (or * (1 + weight), Gemma's unit offset).
torch::Tensor rms_norm(torch::Tensor x, torch::Tensor weight, double eps, bool unit_offset) {
  TORCH_CHECK(x.is_contiguous() && weight.is_contiguous() && weight.dim() == 1 && x.size(-1) == weight.size(0),
              "rms_norm: x must be contiguous [..., dim] and weight [dim]");
  const int64_t dim = x.size(-1), rows = x.numel() / dim;
  torch::Tensor out = torch::empty_like(x);
  const torch::Tensor w = weight.to(torch::kFloat).contiguous();
  const float* wp = w.data_ptr<float>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, x.scalar_type(), "rms_norm", [&] {
    const scalar_t* xp = x.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* xr = xp + r * dim;
        float squares = 0.f;
        for (int64_t i = 0; i < dim; ++i) squares += to_float(xr[i]) * to_float(xr[i]);
        const float inv = 1.f / std::sqrt(squares / dim + static_cast<float>(eps));
        for (int64_t i = 0; i < dim; ++i)
          op[r * dim + i] = static_cast<scalar_t>(to_float(xr[i]) * inv * (unit_offset ? 1.f + wp[i] : wp[i]));
      }
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

TORCH_LIBRARY_FRAGMENT(agentforge, m) {
  m.def("rms_norm(Tensor x, Tensor weight, float eps, bool unit_offset) -> Tensor");
  m.impl("rms_norm", torch::kCPU, &rms_norm);
  m.def("rotary(Tensor x, Tensor cos, Tensor sin) -> Tensor");
  m.impl("rotary", torch::kCPU, &rotary);
}
