"""The chat page in headless Chromium against an in-process backend."""
