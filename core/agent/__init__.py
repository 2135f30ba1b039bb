"""The agent: model providers, triage, tools, the provider circuit breaker and the run."""
