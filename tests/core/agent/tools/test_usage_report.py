import pytest

from core.agent.tools.base import ToolContext, ToolError
from core.agent.tools.usage_report import UsageReport
from tests.core.agent.fakes import FakeUsageSource, Summary


@pytest.fixture
def source() -> FakeUsageSource:
    return FakeUsageSource(
        {
            "alice": Summary(
                7, {"completed": 6, "failed": 1, "timeout": 0}, 1234, 567, 812.34, 2100.0
            ),
            "bob": Summary(99, {"completed": 99}, 10**6, 10**5, 50.0, 90.0),
        }
    )


async def test_the_report_covers_the_calling_users_own_runs(source):
    result = await UsageReport().run({}, ToolContext("alice", source))
    assert result == {
        "runs_total": 7,
        "runs_by_status": {"completed": 6, "failed": 1},
        "input_tokens": 1234,
        "output_tokens": 567,
        "total_tokens": 1801,
        "mean_duration_ms": 812.3,
        "p95_duration_ms": 2100.0,
    }
    assert source.asked == ["alice"]


async def test_a_user_id_in_the_arguments_is_refused_and_never_looked_up(source):
    with pytest.raises(ToolError, match="reports on the person asking"):
        await UsageReport().run({"user_id": "bob"}, ToolContext("alice", source))
    assert source.asked == []


async def test_a_user_without_runs_gets_zeros_not_an_error(source):
    result = await UsageReport().run({}, ToolContext("carol", source))
    assert result["runs_total"] == 0
    assert result["runs_by_status"] == {}
    assert result["mean_duration_ms"] is None and result["p95_duration_ms"] is None
    assert source.asked == ["carol"]


def test_the_schema_offers_no_arguments_at_all():
    parameters = UsageReport.spec.parameters
    assert parameters["properties"] == {} and parameters["additionalProperties"] is False
