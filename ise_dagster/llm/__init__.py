"""Text generation backends: the offline default and (later) OpenAI-compatible models."""
