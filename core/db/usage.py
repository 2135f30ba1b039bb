"""The usage summary query: one user's runs, tokens and durations, canaries excluded."""

from __future__ import annotations

import math

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.models import Run
from core.db.records import UsageSummary

P95 = 0.95


async def summarize_usage(session: AsyncSession, user_id: str) -> UsageSummary:
    """Aggregated in the database; the p95 is the nearest-rank percentile, found by offset
    (portable: SQLite has no ``percentile_cont``), so no duration list is ever loaded."""
    mine = (Run.user_id == user_id, Run.is_canary.is_(False))
    timed = (*mine, Run.duration_ms.is_not(None))
    by_status = {
        status: int(count)
        for status, count in await session.execute(
            select(Run.status, func.count()).where(*mine).group_by(Run.status)
        )
    }
    input_tokens, output_tokens = (
        await session.execute(
            select(
                func.coalesce(func.sum(Run.input_tokens), 0),
                func.coalesce(func.sum(Run.output_tokens), 0),
            ).where(*mine)
        )
    ).one()
    timed_count, mean = (
        await session.execute(select(func.count(), func.avg(Run.duration_ms)).where(*timed))
    ).one()
    p95 = None
    if timed_count:
        rank = math.ceil(P95 * timed_count)
        p95 = await session.scalar(
            select(Run.duration_ms)
            .where(*timed)
            .order_by(Run.duration_ms)
            .offset(rank - 1)
            .limit(1)
        )
    return UsageSummary(
        runs_total=sum(by_status.values()),
        runs_by_status=by_status,
        input_tokens=int(input_tokens),
        output_tokens=int(output_tokens),
        mean_duration_ms=None if mean is None else float(mean),
        p95_duration_ms=None if p95 is None else float(p95),
    )
