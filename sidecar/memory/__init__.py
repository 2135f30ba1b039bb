"""Memory checks of the backend: find it (target.py), read its limit (cgroup.py), judge its
RSS trend (trend.py, pure), and watch it on an interval (watch.py)."""
