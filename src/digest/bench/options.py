"""What a run is given, the constants several steps share, and the error a step raises."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/14"
DEFAULT_READERS = 20_000
DEFAULT_PLAN_SIZES = (100_000, 300_000, 1_000_000)
QUICK_READERS = 1_000
QUICK_PLAN_SIZES = (2_000, 5_000)

BATCH_SIZE = 500  # DIGEST_BATCH_SIZE for the end-to-end run (the production default)
WORKER_CONCURRENCY = 2  # prefork children: one per core on the 2-core reference machine
BENCH_SECRET = "bench-secret-" + "0123456789abcdef"


class BenchError(Exception):
    """A service is missing or a step did not finish; the message says which."""


@dataclass(frozen=True)
class BenchOptions:
    readers: int = DEFAULT_READERS
    plan_sizes: tuple[int, ...] = DEFAULT_PLAN_SIZES
    quick: bool = False
    pg_url: str = DEFAULT_PG_URL
    redis_url: str = DEFAULT_REDIS_URL
    history_days: tuple[int, ...] = ()  # end to end again on N days of daily editions, each N
    history_plain: bool = False  # each history again on an unpartitioned deliveries table

    # Iterations and durations: the full run's, or the smoke test's.
    @property
    def fast_iterations(self) -> int:
        return 1_000 if self.quick else 5_000

    @property
    def stdlib_iterations(self) -> int:
        return 100 if self.quick else 500

    @property
    def naive_iterations(self) -> int:
        return 5 if self.quick else 40

    @property
    def smtp_seconds(self) -> float:
        return 1.0 if self.quick else 5.0

    @property
    def unsubscribe_seconds(self) -> float:
        return 2.0 if self.quick else 10.0

    @property
    def archive_requests(self) -> int:
        """GET /archive per phase of the sign-in figure (alone, then under sign-ins)."""
        return 150 if self.quick else 500
