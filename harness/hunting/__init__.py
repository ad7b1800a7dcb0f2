"""`hunt`: a hypothesis search for the smallest fault schedule that makes a strategy fail.

Imports `harness.runner`, `harness.server` and `harness.core`.
"""

#: Events per schedule, by default: below the retry budget of a careful client (robust tries a
#: message 6 times), so a schedule breaks a client by its logic, not by outlasting its patience.
#: Here, not in schedule.py, so the CLI can name it without hypothesis (the hunt extra).
MAX_EVENTS = 4
