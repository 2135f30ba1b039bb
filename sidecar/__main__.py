"""`python -m sidecar run|canary|slo report`: the sidecar's commands without the `vigil` CLI."""

from sidecar.cli import app

app()
