"""Stand-in servers for tests: Ollama and an OpenAI-compatible server can't run on these machines (no GPU, no
model server binaries), so these follow the documented wire formats closely. They are stand-ins, not the real
servers; the `openai` backend is also tested against a real third-party server (llama-cpp-python's)."""
