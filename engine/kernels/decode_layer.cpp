// A Llama-style decoder layer with int4 or int8 weights as one call, for steps whose rows are all paged
// (decodes, draft verification): the module path's kernels in its order, rounding where it rounds, so
// the output is the same — RMS norm, stacked q/k/v, rotary on q and k, the cache write, paged
// attention, o_proj and the residual, RMS norm, stacked gate/up, SiLU(gate) * up, down_proj and the
// residual. It runs on buffers kept from step to step and calls the kernels' pointer-level forms: called
// per operation, with a tensor made and dispatched for each (≈ 4 µs apiece on an AVX2-only EPYC), a
// SmolLM2 int4 layer at 300 tokens of context took 408 µs there, now 320 (best of four alternated runs).
#include "kernels.h"
#include "layer_rows.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace {

// A linear layer's weights, checked: int4 (qs [n, k / 2], dm [n, k / 32, 2]) or int8 (values [n, k],
// scales [n]).
struct Linear {
  const torch::Tensor &a, &b;
  bool int8;
  int64_t n, k;

  Linear(const torch::Tensor& a, const torch::Tensor& b, bool int8, int64_t n, int64_t k) : a(a), b(b), int8(int8), n(n), k(k) {
    const bool ok = int8 ? a.scalar_type() == torch::kChar && a.sizes() == at::IntArrayRef({n, k}) &&
                               b.scalar_type() == torch::kFloat && b.numel() == n
                         : a.scalar_type() == torch::kByte && a.sizes() == at::IntArrayRef({n, k / 2}) &&
                               b.scalar_type() == torch::kBFloat16 && b.sizes() == at::IntArrayRef({n, k / 32, 2});
    TORCH_CHECK(ok && k % 32 == 0 && a.is_contiguous() && b.is_contiguous(), "decode_layer: a linear layer's weights are not ",
                int8 ? "int8 (values, scales)" : "int4 (qs, dm)", " of ", n, " x ", k);
  }

  void operator()(const float* x, int64_t rows, float* y) const {
    if (int8) int8_linear_rows(x, rows, k, a.data_ptr<int8_t>(), b.data_ptr<float>(), n, y);
    else int4_linear_rows(x, rows, k, a.data_ptr<uint8_t>(), reinterpret_cast<const uint16_t*>(b.data_ptr<at::BFloat16>()), n, y);
  }
};

// A float32 vector's data, converted from another dtype where it must be.
torch::Tensor floats(const torch::Tensor& t) { return t.to(torch::kFloat).contiguous(); }

template <typename scalar_t>
struct Step {
  int64_t t, dim;
  // kept from call to call (a layer runs on one thread at a time: the caller's)
  std::vector<scalar_t> normed, qkv, q, k, attn, hidden, gate_up, act;  // k: a token's keys, for an int8 cache
  std::vector<float> x, y;

  // rows [t, k] of `in` times the layer, rounded to scalar_t into `out` [t, n], as the module path does
  void linear(const Linear& layer, const scalar_t* in, scalar_t* out) {
    if constexpr (std::is_same_v<scalar_t, float>) {
      layer(in, t, out);
    } else {
      x.resize(t * layer.k);
      y.resize(t * layer.n);
      for (int64_t i = 0; i < t * layer.k; ++i) x[i] = static_cast<float>(in[i]);
      layer(x.data(), t, y.data());
      for (int64_t i = 0; i < t * layer.n; ++i) out[i] = static_cast<scalar_t>(y[i]);
    }
  }

  void norm(const scalar_t* in, const float* weight, float eps, scalar_t* out) {
    for (int64_t r = 0; r < t; ++r) rms_norm_row(in + r * dim, weight, out + r * dim, dim, eps);
  }

  static void add(const scalar_t* a, const scalar_t* b, scalar_t* out, int64_t n) {
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<scalar_t>(static_cast<float>(a[i]) + static_cast<float>(b[i]));
  }
};

// One token's keys or values x [heads, head_dim] into its cache row: as they are, rounded to a 16-bit cache,
// or quantized to int8 with a scale per head (`scales`) as attention.quantize_int8 does, to the same bits.
template <typename scalar_t, typename cache_t>
void write_cache_row(const scalar_t* x, cache_t* out, float* scales, int64_t heads, int64_t head_dim) {
  if constexpr (std::is_same_v<cache_t, int8_t>) {
    for (int64_t h = 0; h < heads; ++h) {
      const scalar_t* xh = x + h * head_dim;
      float amax = 0.f;
      for (int64_t d = 0; d < head_dim; ++d) amax = std::max(amax, std::abs(static_cast<float>(xh[d])));
      const float scale = scales[h] = std::max(amax, 1e-8f) / 127.f;
      for (int64_t d = 0; d < head_dim; ++d)
        out[h * head_dim + d] =
            static_cast<int8_t>(std::clamp(std::nearbyint(static_cast<float>(xh[d]) / scale), -127.f, 127.f));
    }
  } else if constexpr (std::is_same_v<cache_t, scalar_t>) {
    std::memcpy(out, x, heads * head_dim * sizeof(scalar_t));
  } else {
    std::transform(x, x + heads * head_dim, out, [](scalar_t v) { return static_cast<cache_t>(v); });
  }
}

template <typename scalar_t, typename cache_t>
void run_layer(const scalar_t* in, scalar_t* out, const Linear (&linears)[4], const float* norm1, const float* norm2,
               float eps, const float* cos, const float* sin, cache_t* k_cache, cache_t* v_cache, float* k_scales,
               float* v_scales, const int64_t* slots,
               const PagedRows& rows, const AttentionShape& shape, int64_t t, int64_t dim) {
  thread_local Step<scalar_t> s;
  const int64_t head_dim = shape.head_dim, q_size = shape.num_heads * head_dim, kv_size = shape.num_kv_heads * head_dim;
  const int64_t width = q_size + 2 * kv_size, inter = linears[3].k;
  s.t = t, s.dim = dim;
  s.normed.resize(t * dim), s.qkv.resize(t * width), s.q.resize(t * q_size), s.k.resize(kv_size);
  s.attn.resize(t * q_size);
  s.hidden.resize(t * dim), s.gate_up.resize(t * 2 * inter), s.act.resize(t * inter);

  s.norm(in, norm1, eps, s.normed.data());
  s.linear(linears[0], s.normed.data(), s.qkv.data());
  for (int64_t r = 0; r < t; ++r) {
    const scalar_t* row = s.qkv.data() + r * width;
    const int64_t slot = slots[r];
    rotary_row(row, s.q.data() + r * q_size, shape.num_heads, head_dim, cos + r * head_dim, sin + r * head_dim);
    const int64_t scale_at = slot * shape.num_kv_heads;
    if constexpr (std::is_same_v<cache_t, int8_t>) {  // rotated in hidden's dtype, then quantized, as the modules do
      rotary_row(row + q_size, s.k.data(), shape.num_kv_heads, head_dim, cos + r * head_dim, sin + r * head_dim);
      write_cache_row(s.k.data(), k_cache + slot * kv_size, k_scales + scale_at, shape.num_kv_heads, head_dim);
    } else {
      rotary_row(row + q_size, k_cache + slot * kv_size, shape.num_kv_heads, head_dim, cos + r * head_dim,
                 sin + r * head_dim);
    }
    write_cache_row(row + q_size + kv_size, v_cache + slot * kv_size, v_scales ? v_scales + scale_at : nullptr,
                    shape.num_kv_heads, head_dim);
  }
  paged_attention_rows(s.attn.data(), s.q.data(), k_cache, v_cache, k_scales, v_scales, rows, shape);
  s.linear(linears[1], s.attn.data(), s.normed.data());  // o_proj, into a free buffer
  Step<scalar_t>::add(in, s.normed.data(), s.hidden.data(), t * dim);

  s.norm(s.hidden.data(), norm2, eps, s.normed.data());
  s.linear(linears[2], s.normed.data(), s.gate_up.data());
  for (int64_t r = 0; r < t; ++r)
    silu_mul_row(s.gate_up.data() + r * 2 * inter, s.gate_up.data() + r * 2 * inter + inter, s.act.data() + r * inter, inter);
  s.linear(linears[3], s.act.data(), s.normed.data());  // down_proj
  Step<scalar_t>::add(s.hidden.data(), s.normed.data(), out, t * dim);
}

}  // namespace

// weights: input norm, q/k/v, o, post-attention norm, gate/up, down — each linear layer as its two
// tensors: int4 (qs, dm), or with int8 = true (values, scales).
torch::Tensor decode_layer(torch::Tensor hidden, at::TensorList weights, bool int8, torch::Tensor cos, torch::Tensor sin,
                           torch::Tensor k_cache, torch::Tensor v_cache, torch::Tensor slots,
                           torch::Tensor block_tables, torch::Tensor context_lens, torch::Tensor query_starts,
                           int64_t num_heads, int64_t num_kv_heads, double eps, double scale, int64_t window,
                           double softcap, int64_t chunk, const std::optional<torch::Tensor>& k_scale,
                           const std::optional<torch::Tensor>& v_scale) {
  TORCH_CHECK(weights.size() == 10, "decode_layer: 10 weight tensors expected, got ", weights.size());
  TORCH_CHECK(hidden.dim() == 2 && hidden.is_contiguous(), "decode_layer: hidden must be contiguous [tokens, dim]");
  const auto dtype = hidden.scalar_type();
  TORCH_CHECK(dtype == torch::kFloat || dtype == torch::kBFloat16 || dtype == torch::kHalf,
              "decode_layer: hidden must be float32, bfloat16 or float16");
  TORCH_CHECK(k_cache.dim() == 4 && k_cache.sizes() == v_cache.sizes() && k_cache.is_contiguous() && v_cache.is_contiguous() &&
                  k_cache.scalar_type() == v_cache.scalar_type() && cache_pairs_with(dtype, k_cache.scalar_type()) &&
                  k_cache.size(2) == num_kv_heads && num_kv_heads > 0 && num_heads % num_kv_heads == 0,
              "decode_layer: the caches must be contiguous [blocks, block_size, num_kv_heads, head_dim] in hidden's dtype, "
              "int8, or (under float32) bfloat16 or float16");
  const auto [k_scales, v_scales] = cache_scales(k_cache, v_cache, k_scale, v_scale);
  const int64_t t = hidden.size(0), dim = hidden.size(1), head_dim = k_cache.size(3);
  const int64_t q_size = num_heads * head_dim, kv_size = num_kv_heads * head_dim, inter = weights[6].size(0) / 2;
  const Linear linears[4] = {{weights[1], weights[2], int8, q_size + 2 * kv_size, dim},
                             {weights[3], weights[4], int8, dim, q_size},
                             {weights[6], weights[7], int8, 2 * inter, dim},
                             {weights[8], weights[9], int8, dim, inter}};
  TORCH_CHECK(weights[0].numel() == dim && weights[5].numel() == dim, "decode_layer: norm weights must be [", dim, "]");
  TORCH_CHECK(cos.numel() == t * head_dim && sin.numel() == t * head_dim,
              "decode_layer: cos and sin must be [tokens, 1, head_dim]");
  TORCH_CHECK(slots.scalar_type() == torch::kLong && slots.is_contiguous() && slots.numel() == t,
              "decode_layer: slots must be int64 [tokens]");
  const int64_t* slot = slots.data_ptr<int64_t>();
  const int64_t cache_rows = k_cache.size(0) * k_cache.size(1);
  for (int64_t r = 0; r < t; ++r)
    TORCH_CHECK(slot[r] >= 0 && slot[r] < cache_rows, "decode_layer: slot ", slot[r], " outside the cache");
  const PagedRows rows = paged_rows(block_tables, context_lens, query_starts);
  TORCH_CHECK(rows.sequences == 0 || rows.query_starts[rows.sequences] == t, "decode_layer: query_starts must end at ", t);
  const AttentionShape shape{num_heads, num_kv_heads, head_dim, k_cache.size(1), scale, window,
                             static_cast<float>(softcap), chunk};
  const torch::Tensor norm1 = floats(weights[0]), norm2 = floats(weights[5]), c = floats(cos), s = floats(sin);
  torch::Tensor out = torch::empty_like(hidden);
  dispatch_cache_pair(dtype, k_cache.scalar_type(), [&](auto hidden_type, auto cache_type) {
    using scalar_t = decltype(hidden_type);
    using cache_t = decltype(cache_type);
    run_layer(hidden.data_ptr<scalar_t>(), out.data_ptr<scalar_t>(), linears, norm1.data_ptr<float>(), norm2.data_ptr<float>(),
              static_cast<float>(eps), c.data_ptr<float>(), s.data_ptr<float>(), k_cache.data_ptr<cache_t>(),
              v_cache.data_ptr<cache_t>(), k_scales, v_scales, slot, rows, shape, t, dim);
  });
  return out;
}

TORCH_LIBRARY_FRAGMENT(agentforge, m) {
  m.def("decode_layer(Tensor hidden, Tensor[] weights, bool int8, Tensor cos, Tensor sin, Tensor(a!) k_cache, "
        "Tensor(b!) v_cache, Tensor slots, Tensor block_tables, Tensor context_lens, Tensor query_starts, "
        "int num_heads, int num_kv_heads, float eps, float scale, int window, float softcap, int chunk, "
        "Tensor(c!)? k_scale=None, Tensor(d!)? v_scale=None) -> Tensor");
  m.impl("decode_layer", torch::kCPU, &decode_layer);
}
