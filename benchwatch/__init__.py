"""benchwatch: an LLM benchmark runner with a live web monitor."""
__version__ = "0.1.0"
