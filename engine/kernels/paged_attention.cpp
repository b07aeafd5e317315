// Paged attention for sequences with a few query tokens each (decodes, draft verification),
// reading keys and values in place through each sequence's block table: no gather, no padding.
//
// Cache layout: [num_blocks, block_size, num_kv_heads, head_dim]. Sequence i owns query rows
// query_starts[i] .. query_starts[i + 1] of q; its query j sits at position
// context_lens[i] - q_len + j and sees keys up to that position (and, with a sliding window,
// no older than `window` tokens; with chunk > 0 (Llama 4), none before its own block of `chunk`
// positions); softcap > 0 (Gemma 2) turns each score s into
// softcap * tanh(s / softcap). One work item is a (sequence, KV head) pair: the KV head's
// group of query heads share every key and value read. Scores, softmax and the weighted sum
// run in float32 whatever the cache dtype.
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <vector>

namespace {

template <typename T>
inline float to_float(T x) { return static_cast<float>(x); }

// Keys/values of tokens [begin, end) of one KV head, visited block by block: fn(token, pointer).
// Blocks lie anywhere in the cache, where no hardware prefetcher can guess them: the rows of this head
// two blocks ahead are asked into the cache while one is visited (a decode step's attention otherwise
// waited on memory most of its time).
template <typename scalar_t, typename Fn>
inline void for_each_token(const scalar_t* cache, const int32_t* block_table, int64_t begin, int64_t end,
                           int64_t block_size, int64_t token_stride, int64_t head_offset, int64_t head_dim, Fn&& fn) {
  const auto prefetch_block = [&](int64_t b) {
    if (b * block_size >= end) return;
    const scalar_t* rows = cache + static_cast<int64_t>(block_table[b]) * block_size * token_stride + head_offset;
    for (int64_t t = 0; t < block_size; ++t)
      for (int64_t at = 0; at < head_dim * static_cast<int64_t>(sizeof(scalar_t)); at += 64)
        __builtin_prefetch(reinterpret_cast<const char*>(rows + t * token_stride) + at);
  };
  prefetch_block(begin / block_size);
  prefetch_block(begin / block_size + 1);
  for (int64_t b = begin / block_size; b * block_size < end; ++b) {
    const scalar_t* block = cache + static_cast<int64_t>(block_table[b]) * block_size * token_stride + head_offset;
    prefetch_block(b + 2);
    const int64_t first = std::max(begin, b * block_size), last = std::min(end, (b + 1) * block_size);
    for (int64_t t = first; t < last; ++t) fn(t, block + (t - b * block_size) * token_stride);
  }
}

// HEAD_DIM > 0 fixes the head size at compile time (fully unrolled loops); 0 reads it at run time.
template <typename scalar_t, int HEAD_DIM>
void attend(const scalar_t* q, const scalar_t* k_cache, const scalar_t* v_cache, scalar_t* out,
            const int32_t* block_table, int64_t context_len, int64_t q_len, int64_t first_row,
            int64_t kv_head, int64_t num_heads, int64_t num_kv_heads, int64_t runtime_head_dim,
            int64_t block_size, double scale, int64_t window, int64_t chunk, float softcap, std::vector<float>& scores,
            std::vector<float>& acc, std::vector<float>& query, std::vector<float>& norm) {
  const int64_t head_dim = HEAD_DIM > 0 ? HEAD_DIM : runtime_head_dim;
  const int64_t group = num_heads / num_kv_heads;
  const int64_t token_stride = num_kv_heads * head_dim;  // between tokens of one block
  const int64_t head_offset = kv_head * head_dim;
  scores.resize(group * context_len);
  acc.resize(group * head_dim);
  query.resize(group * head_dim);
  norm.resize(group);
  for (int64_t j = 0; j < q_len; ++j) {
    const int64_t row = first_row + j;
    const int64_t pos = context_len - q_len + j;
    const int64_t begin = std::max<int64_t>(window > 0 ? pos - window + 1 : 0, chunk > 0 ? pos / chunk * chunk : 0);
    const int64_t end = pos + 1;
    for (int64_t g = 0; g < group; ++g) {
      const scalar_t* qh = q + (row * num_heads + kv_head * group + g) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) query[g * head_dim + d] = to_float(qh[d]) * static_cast<float>(scale);
    }
    for_each_token(k_cache, block_table, begin, end, block_size, token_stride, head_offset, head_dim,
                   [&](int64_t t, const scalar_t* key) {
                     for (int64_t g = 0; g < group; ++g) {
                       const float* qg = query.data() + g * head_dim;
                       float s = 0.f;
#pragma omp simd reduction(+ : s)
                       for (int64_t d = 0; d < head_dim; ++d) s += qg[d] * to_float(key[d]);
                       scores[g * context_len + t] = softcap > 0.f ? softcap * std::tanh(s / softcap) : s;
                     }
                   });
    for (int64_t g = 0; g < group; ++g) {
      float* sg = scores.data() + g * context_len;
      float peak = -std::numeric_limits<float>::infinity();
      for (int64_t t = begin; t < end; ++t) peak = std::max(peak, sg[t]);
      float sum = 0.f;
#pragma omp simd reduction(+ : sum)
      for (int64_t t = begin; t < end; ++t) {
        sg[t] = std::exp(sg[t] - peak);
        sum += sg[t];
      }
      norm[g] = 1.f / sum;
    }
    std::fill(acc.begin(), acc.end(), 0.f);
    for_each_token(v_cache, block_table, begin, end, block_size, token_stride, head_offset, head_dim,
                   [&](int64_t t, const scalar_t* value) {
                     for (int64_t g = 0; g < group; ++g) {
                       const float p = scores[g * context_len + t];
                       float* a = acc.data() + g * head_dim;
#pragma omp simd
                       for (int64_t d = 0; d < head_dim; ++d) a[d] += p * to_float(value[d]);
                     }
                   });
    for (int64_t g = 0; g < group; ++g) {
      scalar_t* o = out + (row * num_heads + kv_head * group + g) * head_dim;
      for (int64_t d = 0; d < head_dim; ++d) o[d] = static_cast<scalar_t>(acc[g * head_dim + d] * norm[g]);
    }
  }
}

}  // namespace

// out, q: [tokens, num_heads, head_dim]; caches: [num_blocks, block_size, num_kv_heads, head_dim];
// block_tables: int32 [n, max_blocks]; context_lens: int32 [n]; query_starts: int32 [n + 1].
void paged_attention(torch::Tensor out, torch::Tensor q, torch::Tensor k_cache, torch::Tensor v_cache,
                     torch::Tensor block_tables, torch::Tensor context_lens, torch::Tensor query_starts,
                     double scale, int64_t window, double softcap, int64_t chunk) {
  TORCH_CHECK(q.is_contiguous() && out.is_contiguous() && k_cache.is_contiguous() && v_cache.is_contiguous(),
              "paged_attention: tensors must be contiguous");
  TORCH_CHECK(block_tables.scalar_type() == torch::kInt32 && context_lens.scalar_type() == torch::kInt32 &&
                  query_starts.scalar_type() == torch::kInt32, "paged_attention: metadata must be int32");
  TORCH_CHECK(q.scalar_type() == k_cache.scalar_type() && q.scalar_type() == out.scalar_type(),
              "paged_attention: q, cache and out must share a dtype");
  const int64_t n = context_lens.size(0);
  const int64_t num_heads = q.size(1), head_dim = q.size(2);
  const int64_t block_size = k_cache.size(1), num_kv_heads = k_cache.size(2);
  const int64_t max_blocks = block_tables.size(1);
  const int32_t* tables = block_tables.data_ptr<int32_t>();
  const int32_t* lens = context_lens.data_ptr<int32_t>();
  const int32_t* starts = query_starts.data_ptr<int32_t>();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, q.scalar_type(), "paged_attention", [&] {
    const scalar_t* qp = q.data_ptr<scalar_t>();
    const scalar_t* kp = k_cache.data_ptr<scalar_t>();
    const scalar_t* vp = v_cache.data_ptr<scalar_t>();
    scalar_t* op = out.data_ptr<scalar_t>();
    // torch's own thread pool (so torch.set_num_threads holds), items handed out one at a time
    // because sequences differ in length
    std::atomic<int64_t> next{0};
    const int64_t items = n * num_kv_heads;
    at::parallel_for(0, std::min<int64_t>(at::get_num_threads(), items), 1, [&](int64_t, int64_t) {
      std::vector<float> scores, acc, query, norm;
      for (int64_t item = next++; item < items; item = next++) {
        const int64_t i = item / num_kv_heads, h = item % num_kv_heads;
        auto run = head_dim == 64 ? attend<scalar_t, 64> : head_dim == 128 ? attend<scalar_t, 128> : attend<scalar_t, 0>;
        run(qp, kp, vp, op, tables + i * max_blocks, lens[i], starts[i + 1] - starts[i], starts[i], h, num_heads,
            num_kv_heads, head_dim, block_size, scale, window, chunk, static_cast<float>(softcap), scores, acc, query,
            norm);
      }
    });
  });
}

TORCH_LIBRARY(agentforge, m) {
  m.def("paged_attention(Tensor(a!) out, Tensor q, Tensor k_cache, Tensor v_cache, Tensor block_tables, "
        "Tensor context_lens, Tensor query_starts, float scale, int window, float softcap, int chunk) -> ()");
  m.impl("paged_attention", torch::kCPU, &paged_attention);
}
