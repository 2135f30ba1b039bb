"""Metrics, traces and logs of the backend: built in the app factory and passed in."""
