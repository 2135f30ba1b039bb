"""The synthetic canary chat: a pure phase checker (checker.py) and its I/O (run.py)."""
