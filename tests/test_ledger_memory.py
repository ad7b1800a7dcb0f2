"""What a long run costs the ledger: transcript lines of one shape are held once, with only
their times apart (issue 28: 100,000 messages of 10 KB peaked at 298 MiB in the server, 800,000
line objects among it)."""

from __future__ import annotations

import tracemalloc

from harness.base.ledger import EOM, ClientLine, Ledger, ServerLine

LINES = 20_000


def _session_of_repeats(ledger: Ledger):
    session = ledger.open_session(1, "127.0.0.1:1", at=0.0, wall=0.0)
    for i in range(LINES // 2):
        at = 1000.0 + i / 8  # a time of its own for every line
        ledger.log(session, ClientLine(at, "MAIL", "FROM:<app@example.com>", "app@example.com"))
        ledger.log(session, ServerLine(at + 0.01, 250, "Ok"))
    return session


def test_repeated_lines_cost_their_times_not_an_object_each() -> None:
    ledger = Ledger(transcript_limit_lines=LINES)
    _session_of_repeats(Ledger())  # warm: allocator pools and caches are not the subject
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        session = _session_of_repeats(ledger)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # An object and a float a line were 2 MB (104 bytes a line); a time and a reference, 16.
    assert held < LINES * 40, f"{held:,} bytes for {LINES:,} lines"
    lines = session.transcript
    assert len(lines) == LINES and session.commands == {"MAIL": LINES // 2}
    assert lines[0] == ClientLine(1000.0, "MAIL", "FROM:<app@example.com>", "app@example.com")
    assert lines[-1] == ServerLine(1000.0 + (LINES // 2 - 1) / 8 + 0.01, 250, "Ok")
    assert [line.at for line in lines[:4]] == [1000.0, 1000.01, 1000.125, 1000.135]


def test_a_trimmed_transcript_keeps_each_line_with_its_own_time() -> None:
    ledger = Ledger(transcript_limit_lines=6)
    session = ledger.open_session(1, "127.0.0.1:1", at=0.0, wall=0.0)
    for n in range(10):
        ledger.log(session, ClientLine(float(n), EOM, size=10, number=n))
        ledger.log(session, ServerLine(n + 0.5, 250, "Ok"))
    kept = session.transcript
    assert [line.at for line in kept] == [0.0, 0.5, 1.0, 8.5, 9.0, 9.5]
    assert kept[4] == ClientLine(9.0, EOM, size=10, number=9)
    assert session.transcript_dropped == 14
    conversation = session.conversation()
    assert conversation[3] == 14 and conversation[4] == ServerLine(8.5, 250, "Ok")
