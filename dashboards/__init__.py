"""Grafana dashboards for Vigil: Python source (grafana-foundation-sdk) that generates the JSON.

``python -m dashboards.build`` writes ``dashboards/<name>.json`` and the provisioning files;
``vigil grafana push`` uploads the dashboards to a Grafana (``dashboards.push``).
"""
