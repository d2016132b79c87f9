"""The conformance kit: every rule of the central sync contract (1.2), checked
against any server from outside, as a counter would see it.

An IT cell building an adapter in front of its HMIS runs it against a staging
server (``opd-fallback conformance URL --devices P01,P02``, the two test
devices' tokens on standard input) before any counter syncs there.

Decisions:
- an adapter layer of its own: it speaks HTTP through httpx and imports
  nothing of the reference server (``central/``), so it judges that server by
  the same rules as any other;
- every network call has a deadline, and the run has a total one (a rule not
  started in time is skipped, saying so), so a run always ends;
- it writes only records of its own, recognisable as tests
  (:mod:`.context` says how they are named), and never sends a mobile number.
"""

from opd_fallback.conformance.rules import RULES
from opd_fallback.conformance.runner import Outcome, Report, run

__all__ = ["RULES", "Outcome", "Report", "run"]
