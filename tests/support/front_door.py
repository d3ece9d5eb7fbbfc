"""A second `digest serve` for the front-door tests (sign-up from a publisher's page): one
embedding origin allowed, a small per-domain confirmation cap."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from tests.support.processes import REPO, free_port, start_web, stop_web
from tests.support.stack import Stack

CONFIRMATIONS_PER_DOMAIN_PER_HOUR = 3


@dataclass(frozen=True)
class FrontDoor:
    base_url: str  # digest, as the snippet's form posts to it
    publisher_port: int  # where the publisher's page is served from (127.0.0.1)

    @property
    def publisher_origin(self) -> str:
        return f"http://127.0.0.1:{self.publisher_port}"


def running_front_door(stack: Stack) -> Iterator[FrontDoor]:
    port, publisher_port = free_port(), free_port()
    door = FrontDoor(f"http://127.0.0.1:{port}", publisher_port)
    env = stack.env(DIGEST_BASE_URL=door.base_url, DIGEST_EMBED_ORIGINS=door.publisher_origin,
                    DIGEST_SUBSCRIBE_CONFIRMATIONS_PER_DOMAIN_PER_HOUR=str(CONFIRMATIONS_PER_DOMAIN_PER_HOUR))
    proc = start_web(env, port, REPO / "test-artifacts" / f"web-front-{stack.backend}.log")
    yield door
    stop_web(proc)
