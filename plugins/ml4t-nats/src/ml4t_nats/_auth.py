"""Who sent a message: the run id and the HMAC of each message, as plain objects (no I/O).

Every message a bridge sends carries the run id (``ml4t-run``). With a per-run secret
(shared out of band: ``secret_env`` or ``secret_file``) it also carries ``ml4t-mac``, the
HMAC-SHA256 of

    b"ml4t-nats/1\\n" + role + "\\n" + run + "\\n" + subject + "\\n" + seq + "\\n" + ack
    + "\\n" + clock + "\\n" + payload

where ``role`` is the *sender's* role, so a message cannot be reflected back to the side
that sent it, and every header that changes the receiver's state is covered. A receiver
checks the run id, then the MAC (``hmac.compare_digest``), before it reads anything else
of the message; what fails is dropped without consuming a sequence number.

>>> driver = Signer(b"k" * 16, run="r1", role="driver")
>>> follower = Signer(b"k" * 16, run="r1", role="follower")
>>> headers = driver.headers("p.market", 1, 0, 5, b"payload")
>>> follower.check("p.market", headers, b"payload") is None
True
>>> print(follower.check("p.market", headers, b"other payload"))
bad ml4t-mac (not signed with this run's secret, or altered on the way)
>>> print(driver.check("p.market", headers, b"payload"))  # its own message, reflected
bad ml4t-mac (not signed with this run's secret, or altered on the way)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

__all__ = ["ACK", "CLOCK", "MAC", "RUN", "SEQ", "Signer"]

SEQ, ACK, CLOCK, RUN, MAC = "ml4t-seq", "ml4t-ack", "ml4t-clock", "ml4t-run", "ml4t-mac"
_VERSION = b"ml4t-nats/1\n"


class Signer:
    """Stamps outgoing headers and checks incoming ones for one side of one run."""

    __slots__ = ("_base", "peer", "role", "run")

    def __init__(self, key: bytes | None, *, run: str, role: str) -> None:
        self.run = run
        self.role = role
        self.peer = "follower" if role == "driver" else "driver"
        self._base = None if key is None else hmac.new(key, digestmod=hashlib.sha256)

    @property
    def signs(self) -> bool:
        return self._base is not None

    def headers(self, subject: str, seq: int, ack: int, clock: int, payload: bytes) -> dict:
        """The headers of one outgoing message (``seq`` 0: unsequenced)."""
        out = {SEQ: str(seq), ACK: str(ack), CLOCK: str(clock), RUN: self.run}
        if self._base is not None:
            out[MAC] = self._mac(self.role, subject, out, payload)
        return out

    def check(self, subject: str, headers: Mapping[str, str], payload: bytes) -> str | None:
        """Why the message is not the peer's message of this run, or None if it is."""
        run = headers.get(RUN)
        if run != self.run:
            return f"ml4t-run is {run!r}, not this run's {self.run!r}"
        if self._base is None:
            return None
        given = headers.get(MAC)
        if given is None:
            return "no ml4t-mac header (not signed with this run's secret)"
        if not hmac.compare_digest(given, self._mac(self.peer, subject, headers, payload)):
            return "bad ml4t-mac (not signed with this run's secret, or altered on the way)"
        return None

    def _mac(self, role: str, subject: str, headers: Mapping[str, str], payload: bytes) -> str:
        assert self._base is not None
        mac = self._base.copy()
        fields = (role, self.run, subject, headers.get(SEQ, ""), headers.get(ACK, ""))
        mac.update(_VERSION + "\n".join((*fields, headers.get(CLOCK, ""), "")).encode())
        mac.update(payload)
        return mac.hexdigest()
