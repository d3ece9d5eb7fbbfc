"""The store: models, engines, migrations."""

from digest.store.engine import get_engine, session_factory, session_scope
from digest.store.models import (
    Base,
    Delivery,
    DeliveryStatus,
    Edition,
    EditionStatus,
    EditionStory,
    Story,
    StoryStatus,
    Subscriber,
    SubscriberStatus,
    SubscriberTopic,
    utcnow,
)

__all__ = [
    "Base",
    "Delivery",
    "DeliveryStatus",
    "Edition",
    "EditionStatus",
    "EditionStory",
    "Story",
    "StoryStatus",
    "Subscriber",
    "SubscriberStatus",
    "SubscriberTopic",
    "get_engine",
    "session_factory",
    "session_scope",
    "utcnow",
]
