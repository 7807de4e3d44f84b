"""The event recorder of one replication: rows for the sessions, commands, messages and
link_events tables (DESIGN.md, "Results").

Rows are plain dicts; every row gets the replication number.  Columns are
whatever the caller passes; :mod:`dialsim.results.tables` fixes their order and
dtypes (and keeps unknown extra columns after the known ones).  No clock here:
times are passed in, in seconds from the start of the replication.
"""

from __future__ import annotations

from typing import Any

__all__ = ["TABLES", "Recorder"]

TABLES = ("sessions", "commands", "messages", "link_events")


class Recorder:
    """Collects the rows of one replication."""

    __slots__ = ("replication", "rows", "constant")

    def __init__(self, replication: int, *, measured: bool = False) -> None:
        self.replication = int(replication)
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
        # Columns every row carries: a measured session (a real or virtual modem on
        # the wall clock) is marked so, so it lines up with its simulation row for row.
        self.constant: dict[str, Any] = {"measured": True} if measured else {}

    def _add(self, table: str, cols: dict[str, Any]) -> None:
        if "replication" in cols and cols["replication"] != self.replication:
            raise ValueError(
                f"row for replication {cols['replication']} given to the recorder of {self.replication}"
            )
        self.rows[table].append({"replication": self.replication, **cols, **self.constant})

    def session(self, **cols: Any) -> None:
        """One dial attempt / call (busy and no-answer attempts too)."""
        self._add("sessions", cols)

    def command(self, **cols: Any) -> None:
        """One protocol command and its reply (POP3 or SMTP)."""
        self._add("commands", cols)

    def message(self, **cols: Any) -> None:
        """One message retrieved (or sent) intact."""
        self._add("messages", cols)

    def link_event(self, t_s: float, event: str, detail: str = "", **cols: Any) -> None:
        """Something the link did (dial, busy, connect, carrier lost, ...); ``cols``
        adds columns (a population's ``subscriber``)."""
        self._add("link_events",
                  {"t_s": float(t_s), "event": str(event), "detail": str(detail), **cols})

    @property
    def sessions(self) -> list[dict[str, Any]]:
        return self.rows["sessions"]

    @property
    def commands(self) -> list[dict[str, Any]]:
        return self.rows["commands"]

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self.rows["messages"]

    @property
    def link_events(self) -> list[dict[str, Any]]:
        return self.rows["link_events"]

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={len(v)}" for k, v in self.rows.items())
        return f"Recorder(replication={self.replication}, {counts})"
