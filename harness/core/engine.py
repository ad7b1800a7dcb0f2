"""The fake server's brain, without I/O: events in, decisions out (the h11 way).

The aiosmtpd adapter tells the engine what happened (a connection, a command, the end of a
message) with the time on the server's clock, and carries out the :class:`Decision` it gets.
Order of precedence for each command: an idle session times out first (it is already dead on
the server's side), then arranged fault rules, then the profile's limits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from harness.core import api_errors, wire
from harness.core.api_errors import SesApiError
from harness.core.decision import PROCEED, Answer, Decision, Fired, Outcome
from harness.core.limits import Limits, RollingQuota, TokenBucket, is_verified
from harness.core.plan import Delay, Drop, DropAfterAccept, Plan, Reply, Stage, Stall
from harness.core.profiles import PROFILES, Line, Replies
from harness.core.rules import Command, RuleBook


@dataclass
class SessionState:
    number: int
    last_active: float
    commands: int = 0
    accepted: int = 0
    authenticated: bool = False
    open: bool = True
    awaiting_tls: bool = False  # STARTTLS is offered and required before AUTH, and not done


class Engine:
    """Decides every reply of the fake server. Deterministic for a given plan and command order.

    >>> from harness.core.plan import Plan
    >>> engine = Engine(Plan(profile="ses", limits={"session_limit": 1}), now=0.0)
    >>> session, _ = engine.connect(now=0.0)
    >>> engine.end_of_data(session, now=0.0, sender="a@x", recipients=("b@y",), key="<1@x>",
    ...                    size=100).outcome
    <Outcome.ACCEPT: 'accept'>
    >>> str(engine.command(session, Stage.MAIL, now=0.0, sender="a@x").reply)
    '421 Connection closed by server. Maximum message count per session reached.'
    """

    def __init__(self, plan: Plan, now: float, region: str = "us-east-1") -> None:
        self.region = region  # the account's region: SES names it in some refusals
        self._sessions: dict[int, SessionState] = {}
        self._next_session = 1
        self._attempts: dict[object, int] = {}
        self._first_attempt: dict[object, float] = {}  # when each message was first tried
        self.api_requests = 0  # API send requests so far: the API stage's command number
        self._api_accepted = 0  # messages accepted through the API: their SES ids' sequence
        self._bucket: TokenBucket | None = None
        self._quota: RollingQuota | None = None
        self._apply(plan, now=now, previous=None)

    # --- configuration ---------------------------------------------------------------------

    def set_plan(self, plan: Plan, *, now: float) -> None:
        """Apply a new plan to the next commands. Rule counters restart; so do changed limits."""
        self._apply(plan, now=now, previous=self.limits)

    def _apply(self, plan: Plan, *, now: float, previous: Limits | None) -> None:
        """Take `plan`; the rate bucket and the quota start afresh where their limits differ
        from `previous` (all of them when there is none)."""
        old = previous
        self.plan = plan
        self.limits: Limits = plan.resolved_limits()
        self.replies: Replies = PROFILES[plan.profile].replies
        self.rules = RuleBook(plan.faults, plan.seed)
        if old is None or (old.rate_per_s, old.burst) != (
            self.limits.rate_per_s,
            self.limits.burst,
        ):
            self._bucket = (
                TokenBucket(self.limits.rate_per_s, self.limits.burst, now=now)
                if self.limits.rate_per_s
                else None
            )
        if old is None or old.daily_quota != self.limits.daily_quota:
            self._quota = RollingQuota(self.limits.daily_quota) if self.limits.daily_quota else None

    def reset(self, plan: Plan, *, now: float) -> None:
        """Start over with `plan`: counters, attempts and limit state; open sessions stay open.

        A session still open (a client's pooled connection) starts afresh too: no messages
        or commands counted, idle from `now`; it stays authenticated, as the connection is. A
        new test then meets the per-session cap it arranged, not what an earlier test left.
        Session numbers restart at 1 when no session is open, so `session=1` means the first
        connection after the reset.
        """
        self._attempts.clear()
        self._first_attempt.clear()
        self.api_requests = self._api_accepted = 0
        if not any(s.open for s in self._sessions.values()):
            self._sessions.clear()
            self._next_session = 1
        for state in self._sessions.values():
            state.commands = state.accepted = 0
            state.last_active = now
        self._bucket = self._quota = None
        self._apply(plan, now=now, previous=None)  # every limit starts afresh

    def ident(self, session: int) -> str:
        """What follows the host in the session's 220."""
        return wire.ident(self.replies, self.plan.seed, session)

    # --- events ----------------------------------------------------------------------------

    def connect(self, *, now: float, starttls: bool = False) -> tuple[int, Decision]:
        """A client connected. Returns its session number and what to do before the 220.

        `starttls`: the server offers STARTTLS, and AUTH must wait until it is done."""
        number = self._next_session
        self._next_session += 1
        open_now = sum(1 for s in self._sessions.values() if s.open)
        state = self._sessions[number] = SessionState(number, now, awaiting_tls=starttls)
        decision = self._from_rules(Command(Stage.CONNECT, number, 0))
        cap = self.limits.max_connections
        if decision is None and cap is not None and open_now >= cap:
            decision = self._refuse("max_connections", self.replies.too_many_connections, True)
        decision = decision or PROCEED
        if decision.close or decision.outcome is Outcome.DROP:
            state.open = False
        return number, decision

    def command(
        self,
        session: int,
        stage: Stage,
        *,
        now: float,
        sender: str | None = None,
        recipients: tuple[str, ...] = (),
    ) -> Decision:
        """A command arrived (any stage but CONNECT and EOM)."""
        state = self._sessions[session]
        if stage is Stage.AUTH and state.awaiting_tls:
            # Refused as SES does, before it counts: the session goes on as if it never came.
            reply = _answer(self.replies.starttls_first)
            return Decision(Outcome.REPLY, reply, rule="protocol:starttls_first")
        state.commands += 1
        idle = self._idle(state, now)
        if idle:
            return idle
        attempt = age_s = None
        if stage is Stage.RCPT and recipients:
            key = f"rcpt\n{sender or ''}\n{recipients[0]}".lower()
            attempt = self._count_attempt(key, now)
            age_s = self._age(key, now)
        command = Command(stage, session, state.commands, sender, recipients, attempt, age_s)
        rules = self._from_rules(command) or PROCEED
        if rules.outcome is not Outcome.PROCEED:
            return rules
        limit = self._limit_at(state, stage)
        return _after(rules, limit) if limit is not None else rules

    def end_of_data(
        self,
        session: int,
        *,
        now: float,
        sender: str,
        recipients: tuple[str, ...],
        key: str,
        size: int,
    ) -> Decision:
        """The final '.' arrived. `key` identifies the logical message (its Message-ID)."""
        state = self._sessions[session]
        state.commands += 1
        idle = self._idle(state, now)
        if idle:
            return idle
        # The Message-ID alone (RCPT keys hold line breaks, which no unfolded value has).
        attempt = self._count_attempt(key, now)
        age_s = self._age(key, now)
        command = Command(Stage.EOM, session, state.commands, sender, recipients, attempt, age_s)
        rules = self._from_rules(command) or PROCEED
        if rules.outcome is Outcome.DROP_AFTER_ACCEPT:
            self._charge(len(recipients), now)
            return self._accept(state, now, rules)
        if rules.outcome is not Outcome.PROCEED:
            return rules
        refusal = self._content_refusal(recipients, size, now)
        if refusal is not None:
            return _after(rules, refusal)
        return self._accept(state, now, _after(rules, Decision(Outcome.ACCEPT)))

    # --- the SES HTTP API: the same account through another door ---------------------------

    def api_request(
        self, *, now: float, sender: str, recipients: tuple[str, ...], key: str
    ) -> Decision:
        """A send request reached the API (before its messages): what the fault rules say.

        Requests are numbered across the server like commands of one session numbered 0, so a
        rule's `nth`, `probability` and `attempts` (by `key`, the Message-ID) work as at EOM.
        """
        self.api_requests += 1
        attempt = self._count_attempt(("api", key), now)
        age_s = self._age(("api", key), now)
        command = Command(Stage.API, 0, self.api_requests, sender, recipients, attempt, age_s)
        return self._from_rules(command) or PROCEED

    def api_message(
        self,
        *,
        now: float,
        version: str,
        recipients: tuple[str, ...],
        size: int,
        sender: str = "",
        by_fiat: bool = False,
    ) -> Decision:
        """One message of an API request: the account's limits, then an SES message id.

        The rate bucket and the daily quota are the SMTP server's own, counted per recipient.
        `by_fiat` (a drop_after_accept rule fired) accepts and charges without checking.
        """
        if by_fiat:
            self._charge(len(recipients), now)
        else:
            max_bytes = self.limits.max_message_bytes
            if version == api_errors.V1:
                v1_cap = api_errors.V1_MAX_MESSAGE_BYTES
                max_bytes = min(max_bytes or v1_cap, v1_cap)
            refused = self._content_limit(
                recipients, size, now, max_bytes, identities=(sender, *recipients)
            )
            if refused is not None:
                name, fill = refused
                if name == "max_message_bytes":
                    fill = str(max_bytes)
                error = api_errors.error_for(
                    name, version, fill, self.limits.api_throttle, self.region
                )
                fired = (Fired("limit", name, "reply", error.line),)
                answer = Answer(error.status, f"{error.code}: {error.message}")
                return Decision(Outcome.REPLY, reply=answer, fired=fired, error=error)
        self._api_accepted += 1
        # Session 0: no SMTP session has it.
        ses_id = wire.ses_id(self.plan.seed, 0, self._api_accepted, now)
        return Decision(Outcome.ACCEPT, ses_id=ses_id)

    def api_error(self, decision: Decision, version: str) -> SesApiError:
        """The API error a rule's reply stands for (its status, text and optional code)."""
        assert decision.reply is not None
        index = next(f.rule_index for f in reversed(decision.fired) if f.rule_index is not None)
        action = self.rules.rules[index].action
        assert isinstance(action, Reply)
        return api_errors.for_rule(action.code, action.error, action.text, version)

    def send_quota(self, *, now: float) -> tuple[float, float, float]:
        """(max 24-hour send, max send rate, sent in the last 24 hours); -1 means unlimited."""
        quota = self.limits.daily_quota
        used = self._quota.used(now=now) if self._quota is not None else 0
        return (
            float(quota) if quota is not None else -1.0,
            float(self.limits.rate_per_s) if self.limits.rate_per_s is not None else -1.0,
            float(used),
        )

    # --- session bookkeeping ---------------------------------------------------------------

    def replied(self, session: int, *, now: float) -> None:
        """The server finished answering: the idle timer restarts from here."""
        self._sessions[session].last_active = now

    def received(self, session: int, *, now: float) -> None:
        """Bytes arrived from the client (a message line mid-DATA too): the idle timer restarts
        from here, as SES's "Timeout waiting for data from client" says."""
        if session in self._sessions:  # a reset may have forgotten it
            self._sessions[session].last_active = now

    def authenticated(self, session: int) -> None:
        self._sessions[session].authenticated = True

    def encrypted(self, session: int) -> None:
        """STARTTLS is done: AUTH may come."""
        self._sessions[session].awaiting_tls = False

    def too_large(self, session: int) -> Decision:
        """The message data outgrew the size limit while it was read (the adapter enforces
        it as the data arrives, so a huge message costs no memory): the profile's refusal."""
        return self._refuse("max_message_bytes", self.replies.too_large, False)

    def disconnected(self, session: int) -> None:
        """The connection is gone: forget the session (so long runs hold only live ones).

        A session forgotten by `reset()` is ignored.
        """
        self._sessions.pop(session, None)

    def idle_deadline(self, session: int) -> float | None:
        """When this session times out, on the server's clock (None: never)."""
        if self.limits.idle_timeout_s is None:
            return None
        return self._sessions[session].last_active + self.limits.idle_timeout_s

    def idle_timeout(self, session: int) -> Decision:
        """The decision for an idle session: the unprompted 451 and close."""
        self._sessions[session].open = False
        return self._refuse("idle_timeout_s", self.replies.idle_timeout, True)

    def commands_in(self, session: int) -> int:
        """Commands received so far in `session` (end of data counts as one)."""
        return self._sessions[session].commands

    @property
    def open_sessions(self) -> int:
        return sum(1 for s in self._sessions.values() if s.open)

    # --- internals -------------------------------------------------------------------------

    def _count_attempt(self, key: object, now: float) -> int:
        self._attempts[key] = self._attempts.get(key, 0) + 1
        self._first_attempt.setdefault(key, now)
        return self._attempts[key]

    def _age(self, key: object, now: float) -> float:
        """Seconds since the first attempt of the message `key` (what greylist_s reads)."""
        return now - self._first_attempt[key]

    def _idle(self, state: SessionState, now: float) -> Decision | None:
        deadline = self.idle_deadline(state.number)
        if deadline is not None and now > deadline:
            return self.idle_timeout(state.number)
        return None

    def _refuse(self, limit: str, line: Line, close: bool, fill: str = "") -> Decision:
        reply = _answer(line, fill, self.region)
        fired = (Fired("limit", limit, "reply", str(reply)),)
        return Decision(Outcome.REPLY, reply=reply, close=close, fired=fired)

    def _from_rules(self, command: Command) -> Decision | None:
        """Delays from every firing rule add up; the first other firing rule decides."""
        indexes = self.rules.firing(command)
        if not indexes:
            return None
        delay_s = 0.0
        fired: list[Fired] = []
        for index in indexes:
            rule = self.rules.rules[index]
            action = rule.action
            if isinstance(action, Delay):
                delay_s += action.delay_s
                fired.append(Fired("rule", rule.label, action.kind, rule_index=index))
                continue
            if isinstance(action, Reply):
                close = action.close if action.close is not None else action.code == 421
                fired.append(Fired("rule", rule.label, action.kind, action.line, index))
                answer = Answer(action.code, action.text)
                return Decision(Outcome.REPLY, answer, close, delay_s, fired=tuple(fired))
            fired.append(Fired("rule", rule.label, action.kind, rule_index=index))
            if isinstance(action, Drop):
                return Decision(Outcome.DROP, close=True, delay_s=delay_s, fired=tuple(fired))
            if isinstance(action, DropAfterAccept):
                return Decision(
                    Outcome.DROP_AFTER_ACCEPT, close=True, delay_s=delay_s, fired=tuple(fired)
                )
            assert isinstance(action, Stall)
            return Decision(
                Outcome.STALL, delay_s=delay_s, stall_s=action.stall_s, fired=tuple(fired)
            )
        return Decision(Outcome.PROCEED, delay_s=delay_s, fired=tuple(fired))

    def _limit_at(self, state: SessionState, stage: Stage) -> Decision | None:
        limits = self.limits
        if stage is Stage.MAIL:
            if limits.session_limit is not None and state.accepted >= limits.session_limit:
                state.open = False
                return self._refuse("session_limit", self.replies.session_cap, True)
            if limits.require_auth and not state.authenticated:
                return self._refuse("require_auth", self.replies.auth_required, False)
        return None

    def _content_refusal(
        self, recipients: tuple[str, ...], size: int, now: float
    ) -> Decision | None:
        refused = self._content_limit(recipients, size, now, self.limits.max_message_bytes)
        if refused is None:
            return None
        name, fill = refused
        return self._refuse(name, getattr(self.replies, _LINES[name]), False, fill)

    def _content_limit(
        self,
        recipients: tuple[str, ...],
        size: int,
        now: float,
        max_bytes: int | None,
        identities: tuple[str, ...] | None = None,
    ) -> tuple[str, str] | None:
        """The limit a message breaks (its field name, and the identities that failed), or None
        after taking its recipients from the rate bucket and the daily quota."""
        limits = self.limits
        if max_bytes is not None and size > max_bytes:
            return "max_message_bytes", ""
        if limits.max_recipients is not None and len(recipients) > limits.max_recipients:
            return "max_recipients", ""
        if limits.verified is not None:
            checked = recipients if identities is None else identities
            failed = [r for r in checked if not is_verified(r, limits.verified)]
            if failed:
                return "verified", ", ".join(dict.fromkeys(failed))
        count = len(recipients)
        if self._quota is not None and not self._quota.fits(count, now=now):
            return "daily_quota", ""
        if self._bucket is not None and not self._bucket.try_take(count, now=now):
            return "rate_per_s", ""
        if self._quota is not None:
            self._quota.try_take(count, now=now)
        return None

    def _charge(self, count: int, now: float) -> None:
        """Take rate and quota for a message accepted by fiat (drop_after_accept)."""
        if self._bucket is not None:
            self._bucket.try_take(count, now=now)
        if self._quota is not None:
            self._quota.try_take(count, now=now)

    def _accept(self, state: SessionState, now: float, decision: Decision) -> Decision:
        state.accepted += 1
        ses_id = wire.ses_id(self.plan.seed, state.number, state.accepted, now)
        reply = Answer(self.replies.accepted.code, self.replies.accepted.text.format(ses_id))
        return dataclasses.replace(decision, reply=reply, ses_id=ses_id)


# The profile's reply line for each limit a message can break at end of data.
_LINES = {
    "max_message_bytes": "too_large",
    "max_recipients": "too_many_recipients",
    "verified": "not_verified",
    "daily_quota": "daily_quota",
    "rate_per_s": "rate_exceeded",
}


def _answer(line: Line, fill: str = "", region: str = "us-east-1") -> Answer:
    """A profile's reply line, `{}` filled with `fill` when given, `{region}` with `region`."""
    return Answer(line.code, line.text.format(fill, region=region.upper()) if fill else line.text)


def _after(rules: Decision, then: Decision) -> Decision:
    """`then`, preceded by what rules that let the command proceed did (their delays)."""
    if not rules.fired:
        return then
    return dataclasses.replace(then, delay_s=rules.delay_s, fired=rules.fired + then.fired)
