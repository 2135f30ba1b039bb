import pytest

from core.agent.model import PROVIDER_ERROR_REASONS, ProviderError, Usage


def test_usages_add_up_field_by_field():
    total = Usage(10, 2) + Usage(5, 7)
    assert total == Usage(15, 9)
    assert total.total_tokens == 24


def test_a_provider_error_carries_its_reason_and_message():
    error = ProviderError("provider_refused", "bad key", status_code=401)
    assert (error.reason, str(error), error.status_code) == ("provider_refused", "bad key", 401)


def test_a_provider_error_with_an_unknown_reason_is_a_bug_caught_at_once():
    with pytest.raises(ValueError):
        ProviderError("oops", "message")  # type: ignore[arg-type]


def test_the_documented_reasons_are_all_known():
    assert {
        "provider_timeout",
        "provider_unreachable",
        "provider_http_error",
        "provider_bad_response",
        "provider_refused",
    } <= PROVIDER_ERROR_REASONS
