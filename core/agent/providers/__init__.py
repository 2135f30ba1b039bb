"""Model providers: the built-in offline agent and any OpenAI-compatible endpoint."""

from __future__ import annotations

from core.agent.model import ModelProvider
from core.agent.providers.offline import OfflineProvider
from core.agent.providers.openai import OpenAIProvider
from core.settings import Settings

__all__ = ["OfflineProvider", "OpenAIProvider", "build_provider"]


def build_provider(settings: Settings) -> ModelProvider:
    """The provider ``VIGIL_PROVIDER`` names, configured from the settings."""
    if settings.provider == "openai":
        return OpenAIProvider(
            base_url=settings.openai_base_url,
            api_key=settings.openai_api_key,
            model=settings.openai_model,
            timeout_s=settings.provider_timeout_s,
        )
    return OfflineProvider(latency_s=settings.offline_latency_s)
