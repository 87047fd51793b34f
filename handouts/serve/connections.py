"""Slow and greedy clients: each request must arrive whole in time, and one address holds only so many connections."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import ClassVar

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

# The request line, headers and body of one request must all arrive within this. A browser sends a
# form in milliseconds; a client that trickles bytes (slowloris) is cut off here instead of holding
# a connection, and with it a place under uvicorn's connection limit, for ever.
REQUEST_SECONDS = 10.0
# Open connections from one address at once. Browsers open six per host; a clinic behind one NAT
# address has a few dozen counselors at most, and past this an address is holding sockets to starve others.
MAX_CONNECTIONS_PER_ADDRESS = 32
# The trusted local reverse proxy (uvicorn's forwarded_allow_ips) buffers slow clients itself and
# carries every browser's requests, so its connections are not counted against one address.
TRUSTED_PROXY = "127.0.0.1"


class GuardedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol with a deadline for each request to arrive and a cap on connections per address."""

    # One event loop per server process: every connection of this server counts here.
    open_by_address: ClassVar[Counter[str]] = Counter()
    request_seconds: ClassVar[float] = REQUEST_SECONDS
    max_per_address: ClassVar[int] = MAX_CONNECTIONS_PER_ADDRESS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection against its address, or drop it at once when that address holds too many."""
        super().connection_made(transport)
        self.address = str(self.client[0]) if self.client else ""
        self.counted = self.address != TRUSTED_PROXY
        self.request_timer: asyncio.TimerHandle | None = None
        if self.counted and self.open_by_address[self.address] >= self.max_per_address:
            self.counted = False
            transport.abort()
            return
        if self.counted:
            self.open_by_address[self.address] += 1
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection and its deadline."""
        self._disarm()
        if self.counted:
            self.counted = False
            self.open_by_address[self.address] -= 1
            if self.open_by_address[self.address] <= 0:
                del self.open_by_address[self.address]
        super().connection_lost(exc)

    def handle_events(self) -> None:
        """Handle what arrived; once a whole request is in, its deadline is met."""
        super().handle_events()
        if self.conn.their_state not in (h11.IDLE, h11.SEND_BODY):
            self._disarm()

    def on_response_complete(self) -> None:
        """After each answer the next request on this connection gets a deadline of its own."""
        self._arm()
        super().on_response_complete()

    def _arm(self) -> None:
        self._disarm()
        self.request_timer = self.loop.call_later(self.request_seconds, self._too_slow)

    def _disarm(self) -> None:
        if self.request_timer is not None:
            self.request_timer.cancel()
            self.request_timer = None

    def _too_slow(self) -> None:
        self.request_timer = None
        if not self.transport.is_closing():
            self.transport.close()
