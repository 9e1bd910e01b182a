"""The model test tier: a real local model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M) behind llama.cpp's
OpenAI-compatible server (xllamacpp), started and stopped by the tests themselves."""
