"""Plain in-memory state shared by the screens (no Textual, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StatusModel:
    """What the status bar shows; replaced by the status worker."""

    hospital: str = ""
    device_id: str = ""
    operator: str | None = None
    central: bool | None = None  # None: no server configured
    probed: bool = False
    ops_waiting: int = 0
    oldest_age_s: float | None = None
    ops_flagged: int = 0
    last_sync: str | None = None
    sync_progress: tuple[int, int] | None = None
    insecure_tls: bool = False  # OPD_VERIFY_TLS=false: shown on every screen
    hub: bool | None = None  # the LAN hub: None not configured, else reachable at the last exchange
    hub_records: int = 0  # records of other counters held here
    clock_off: str | None = None  # the PC clock is off the hub's or central's: why, in words
    clock_confirmed: bool = False  # a supervisor confirmed the date anyway (clock confirm)
    hub_went_back: str | None = None  # HH:MM when an exchange found the hub gone back (it heals by itself)
    hub_refused: int = 0  # items the hub refused at the last exchange (not counted as shared)
    lan_conflicts: int = 0  # open LAN edit conflicts: a patient's field changed at two counters (store/lan_conflicts.py)

    @property
    def clock_wrong(self) -> bool:
        """Off and not confirmed: saving waits for a supervisor (ctrl+t, tui/screens/clock.py)."""
        return bool(self.clock_off) and not self.clock_confirmed


@dataclass(frozen=True)
class Session:
    """The logged-in operator."""

    operator_id: str
    name: str
    role: str

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"
