// A Llama-style decoder layer with int4 or int8 weights as one call, for steps whose rows are all paged
// (decodes, draft verification) — the per-operation Python a layer otherwise takes (module calls,
// slicing, the cache writes: ≈ 0.1 ms a layer, a third of SmolLM2's int4 decode step) drops to one
// dispatch. The same kernels in the same order as the module path, so the output is the same:
// RMS norm, stacked q/k/v, rotary on q and k, the cache write, paged attention, o_proj and the
// residual, RMS norm, stacked gate/up, SiLU(gate) * up, down_proj and the residual.
#include <torch/extension.h>

torch::Tensor int4_linear(torch::Tensor x, torch::Tensor qs, torch::Tensor dm);
torch::Tensor int8_linear(torch::Tensor x, torch::Tensor values, torch::Tensor scales);
torch::Tensor rms_norm(torch::Tensor x, torch::Tensor weight, double eps, bool unit_offset);
torch::Tensor rotary(torch::Tensor x, torch::Tensor cos, torch::Tensor sin);
torch::Tensor silu_mul(torch::Tensor gate_up);
void paged_attention(torch::Tensor out, torch::Tensor q, torch::Tensor k_cache, torch::Tensor v_cache,
                     torch::Tensor block_tables, torch::Tensor context_lens, torch::Tensor query_starts,
                     double scale, int64_t window, double softcap, int64_t chunk);

// weights: input norm, q/k/v, o, post-attention norm, gate/up, down — each linear layer as its two
// tensors: int4 (qs, dm), or with int8 = true (values, scales).
torch::Tensor decode_layer(torch::Tensor hidden, at::TensorList weights, bool int8, torch::Tensor cos, torch::Tensor sin,
                           torch::Tensor k_cache, torch::Tensor v_cache, torch::Tensor slots,
                           torch::Tensor block_tables, torch::Tensor context_lens, torch::Tensor query_starts,
                           int64_t num_heads, int64_t num_kv_heads, double eps, double scale, int64_t window,
                           double softcap, int64_t chunk) {
  TORCH_CHECK(weights.size() == 10, "decode_layer: 10 weight tensors expected, got ", weights.size());
  TORCH_CHECK(hidden.dim() == 2 && hidden.is_contiguous(), "decode_layer: hidden must be contiguous [tokens, dim]");
  const int64_t t = hidden.size(0), head_dim = k_cache.size(3);
  const int64_t q_size = num_heads * head_dim, kv_size = num_kv_heads * head_dim;
  const auto linear = [&](const torch::Tensor& x, int64_t first) {
    return int8 ? int8_linear(x, weights[first], weights[first + 1]) : int4_linear(x, weights[first], weights[first + 1]);
  };
  const torch::Tensor qkv = linear(rms_norm(hidden, weights[0], eps, false), 1);
  const torch::Tensor q = rotary(qkv.narrow(1, 0, q_size).contiguous().view({t, num_heads, head_dim}), cos, sin);
  const torch::Tensor k = rotary(qkv.narrow(1, q_size, kv_size).contiguous().view({t, num_kv_heads, head_dim}), cos, sin);
  const torch::Tensor v = qkv.narrow(1, q_size + kv_size, kv_size).contiguous().view({t, num_kv_heads, head_dim});
  k_cache.view({-1, num_kv_heads, head_dim}).index_copy_(0, slots, k);
  v_cache.view({-1, num_kv_heads, head_dim}).index_copy_(0, slots, v);
  torch::Tensor attn = torch::empty_like(q);
  paged_attention(attn, q, k_cache, v_cache, block_tables, context_lens, query_starts, scale, window, softcap, chunk);
  hidden = hidden + linear(attn.view({t, q_size}), 3);
  return hidden + linear(silu_mul(linear(rms_norm(hidden, weights[5], eps, false), 6)), 8);
}

TORCH_LIBRARY_FRAGMENT(agentforge, m) {
  m.def("decode_layer(Tensor hidden, Tensor[] weights, bool int8, Tensor cos, Tensor sin, Tensor(a!) k_cache, "
        "Tensor(b!) v_cache, Tensor slots, Tensor block_tables, Tensor context_lens, Tensor query_starts, "
        "int num_heads, int num_kv_heads, float eps, float scale, int window, float softcap, int chunk) -> Tensor");
  m.impl("decode_layer", torch::kCPU, &decode_layer);
}
