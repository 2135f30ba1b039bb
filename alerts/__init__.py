"""Prometheus recording and alert rules for Vigil, generated from ``alerts/config.yaml``."""
