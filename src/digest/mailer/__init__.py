"""Mail out: MIME building and the transports that carry it."""
