"""The fake server's brain, without I/O: events in, decisions out (the h11 way).

The aiosmtpd adapter tells the engine what happened (a connection, a command, the end of a
message) with the time on the server's clock, and carries out the :class:`Decision` it gets.
Order of precedence for each command: an idle session times out first (it is already dead on
the server's side), then arranged fault rules, then the profile's limits.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from harness.core import account, api_errors, checks, wire
from harness.core.address import lower_shared
from harness.core.api_errors import SesApiError
from harness.core.decision import PROCEED, Answer, Decision, Fired, Outcome
from harness.core.limits import Limits, Window
from harness.core.margins import Margins
from harness.core.meters import MeterBook, Meters
from harness.core.outcomes import Fate
from harness.core.plan import Plan, Reply, Stage
from harness.core.profiles import Line, Replies
from harness.core.rules import Command, RuleBook, decide
from harness.core.suppression import SuppressionList


@dataclass
class SessionState:
    number: int
    last_active: float
    commands: int = 0
    accepted: int = 0
    authenticated: bool = False
    user: str | None = None  # who authenticated (limits per user count by it)
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
        self._meters: MeterBook
        self._logins: Window | None = None
        self.margins = Margins()  # how near the clock came to deciding otherwise
        self.suppression = SuppressionList()  # the account's; a reset empties it
        # "": SES ids follow from the seed alone, as a scenario's runs need; a run's own random
        # text (serve's): ids unique to that run and to each reset in it.
        self.id_salt = ""
        self._resets = 0
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
        self.replies: Replies = plan.resolved_profile().replies
        self.rules = RuleBook(plan.faults, plan.seed)
        if old is None:
            self._meters = MeterBook(self.limits, now)
        else:
            self._meters.update(self.limits, now)
        if old is None or old.auth_per_minute != self.limits.auth_per_minute:
            logins = self.limits.auth_per_minute
            self._logins = Window(logins) if logins else None

    def reset(self, plan: Plan, *, now: float) -> None:
        """Start over with `plan`: counters, attempts and limit state; open sessions stay open,
        afresh (none counted, idle from `now`, still authenticated), so a new test meets the
        cap it arranged. Session numbers restart at 1 when none is open."""
        self._attempts.clear()
        self._first_attempt.clear()
        self._resets += 1
        self.api_requests = self._api_accepted = 0
        if not any(s.open for s in self._sessions.values()):
            self._sessions.clear()
            self._next_session = 1
        for state in self._sessions.values():
            state.commands = state.accepted = 0
            state.last_active = now
        self.margins = Margins()
        self.suppression.clear()
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
        decision = self._from_rules(Command(Stage.CONNECT, number, 0), now)
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
            # The command's own strings when in lower case already (a joined one: 105 bytes).
            key = ("rcpt", lower_shared(sender or ""), lower_shared(recipients[0]))
            attempt = self._count_attempt(key, now)
            age_s = self._age(key, now)
        command = Command(stage, session, state.commands, sender, recipients, attempt, age_s)
        rules = self._from_rules(command, now) or PROCEED
        if rules.outcome is not Outcome.PROCEED:
            return rules
        limit = self._limit_at(state, stage, now, recipients)
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
        tenant: str | None = None,
    ) -> Decision:
        """The final '.' arrived. `key` identifies the logical message (its Message-ID);
        `tenant`, the SES tenant it names (its X-SES-TENANT header)."""
        state = self._sessions[session]
        state.commands += 1
        idle = self._idle(state, now)
        if idle:
            return idle
        # The Message-ID alone (RCPT keys are tuples).
        attempt = self._count_attempt(key, now)
        age_s = self._age(key, now)
        command = Command(
            Stage.EOM, session, state.commands, sender, recipients, attempt, age_s, tenant
        )
        rules = self._from_rules(command, now) or PROCEED
        meters = self._meters.of(state.user)
        if rules.outcome is Outcome.DROP_AFTER_ACCEPT:
            meters.charge(len(recipients), now)
            return self._accept(state, now, rules, recipients)
        if rules.outcome is not Outcome.PROCEED:
            return rules
        refusal = self._user_connections(state) or self._content_refusal(
            meters, recipients, size, now
        )
        if refusal is not None:
            return _after(rules, refusal)
        return self._accept(state, now, _after(rules, checks.tarpit(meters, now)), recipients)

    # --- the SES HTTP API: the same account through another door ---------------------------

    def api_request(
        self,
        *,
        now: float,
        sender: str,
        recipients: tuple[str, ...],
        key: str,
        tenant: str | None = None,
    ) -> Decision:
        """A send request reached the API (before its messages): what the fault rules say.
        Requests are numbered like commands of a session 0, so a rule's `nth`, `probability`
        and `attempts` (by `key`, the Message-ID) work as at EOM."""
        self.api_requests += 1
        attempt = self._count_attempt(("api", key), now)
        age_s = self._age(("api", key), now)
        command = Command(
            Stage.API, 0, self.api_requests, sender, recipients, attempt, age_s, tenant
        )
        return self._from_rules(command, now) or PROCEED

    def api_message(
        self,
        *,
        now: float,
        version: str,
        recipients: tuple[str, ...],
        size: int,
        sender: str = "",
        by_fiat: bool = False,
        fates: tuple[Fate, ...] = (),
    ) -> Decision:
        """One message of an API request: the account's limits (the SMTP server's own rate
        and quota, per recipient), then an SES message id and its `fates` (the request's rules',
        for this message's recipients). `by_fiat` (a drop_after_accept rule fired) accepts and
        charges without checking."""
        meters = self._meters.of(None)
        if by_fiat:
            meters.charge(len(recipients), now)
        else:
            max_bytes = self.limits.max_message_bytes
            if version == api_errors.V1:
                v1_cap = api_errors.V1_MAX_MESSAGE_BYTES
                max_bytes = min(max_bytes or v1_cap, v1_cap)
            refused = checks.content_limit(
                self.limits,
                meters,
                recipients,
                size,
                now,
                max_bytes,
                (sender, *recipients),
                margins=self.margins,
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
        ses_id = wire.ses_id(self.plan.seed, 0, self._api_accepted, now, self.salt)
        mine = tuple(f for f in (fate.only(recipients) for fate in fates) if f is not None)
        fated = self.suppression.fates(mine, recipients, now=now)
        return Decision(Outcome.ACCEPT, ses_id=ses_id, fates=fated)

    def api_error(self, decision: Decision, version: str) -> SesApiError:
        """The API error a rule's reply stands for (its status, text and optional code)."""
        assert decision.reply is not None
        index = next(f.rule_index for f in reversed(decision.fired) if f.rule_index is not None)
        action = self.rules.rules[index].action
        assert isinstance(action, Reply)
        return api_errors.for_rule(action.code, action.error, action.text, version)

    @property
    def salt(self) -> str:
        return f"{self.id_salt}:{self._resets}" if self.id_salt else ""

    def send_quota(self, *, now: float) -> tuple[float, float, float]:
        """(max 24-hour send, max send rate, sent in the last 24 hours): see core.account."""
        meter = self._meters.of(None).quota
        used = meter.used(now=now) if meter is not None else 0
        return account.send_quota(self.limits, self.plan.resolved_profile().limits, used)

    # --- session bookkeeping ---------------------------------------------------------------

    def replied(self, session: int, *, now: float) -> None:
        """The server finished answering: the idle timer restarts from here."""
        self._sessions[session].last_active = now

    def received(self, session: int, *, now: float) -> None:
        """Bytes arrived from the client (a message line mid-DATA too): the idle timer restarts
        from here, as SES's "Timeout waiting for data from client" says."""
        if session in self._sessions:  # a reset may have forgotten it
            self._idle(self._sessions[session], now)  # its margin; the timer decides
            self._sessions[session].last_active = now

    def authenticated(self, session: int, user: str | None = None) -> None:
        """AUTH succeeded in `session`, as `user` (limits per user count by it)."""
        state = self._sessions[session]
        state.authenticated = True
        state.user = user

    def encrypted(self, session: int) -> None:
        """STARTTLS is done: AUTH may come."""
        self._sessions[session].awaiting_tls = False

    def too_large(self, session: int) -> Decision:
        """The message data outgrew the size limit while it was read (the adapter enforces
        it as the data arrives, so a huge message costs no memory): the profile's refusal."""
        return self._refuse("max_message_bytes", self.replies.too_large, False)

    def disconnected(self, session: int) -> None:
        """The connection is gone: forget the session (so long runs hold only live ones)."""
        self._sessions.pop(session, None)

    def idle_deadline(self, session: int) -> float | None:
        """When this session times out, on the server's clock (None: never)."""
        timeout_s = self.idle_timeout_s(session)
        if timeout_s is None:
            return None
        return self._sessions[session].last_active + timeout_s

    def idle_timeout_s(self, session: int) -> float | None:
        """How long `session` may be silent: the limit, or drawn (seeded, per session) between
        it and `idle_timeout_max_s`."""
        return checks.idle_timeout_s(self.limits, self.plan.seed, session)

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
        if deadline is not None:
            self.margins.note(deadline - now, "limit:idle_timeout_s", at_s=now)
        return None

    def _refuse(self, limit: str, line: Line, close: bool, fill: str = "") -> Decision:
        reply = _answer(line, fill, self.region)
        fired = (Fired("limit", limit, "reply", str(reply)),)
        return Decision(Outcome.REPLY, reply=reply, close=close, fired=fired)

    def _from_rules(self, command: Command, now: float) -> Decision | None:
        decision = decide(self.rules, command)
        if self.rules.greylist_margin is not None:
            self.margins.note(*self.rules.greylist_margin, at_s=now)
        return decision

    def _limit_at(
        self, state: SessionState, stage: Stage, now: float, recipients: tuple[str, ...]
    ) -> Decision | None:
        limits = self.limits
        if stage is Stage.MAIL:
            if limits.session_limit is not None and state.accepted >= limits.session_limit:
                state.open = False
                return self._refuse("session_limit", self.replies.session_cap, True)
            if limits.require_auth and not state.authenticated:
                return self._refuse("require_auth", self.replies.auth_required, False)
        if stage is Stage.AUTH and self._logins is not None and not self._logins.try_take(now=now):
            return self._refuse("auth_per_minute", self.replies.too_many_logins, False)
        if stage.value == limits.quota_stage:
            count = len(recipients) if stage is Stage.DATA else 1
            meters = self._meters.of(state.user)
            rate = stage is not Stage.AUTH
            refused = checks.spent(meters, count, now, rate=rate, margins=self.margins)
            if refused is not None:
                return self._refuse(
                    refused, getattr(self.replies, checks.REPLY_LINES[refused]), False
                )
        return None

    def _user_connections(self, state: SessionState) -> Decision | None:
        """Past the cap of sessions one user may have open (Microsoft 365's 3 a mailbox), the
        later sessions' messages are refused at end of data, whatever the earlier ones do.
        Sessions that did not log in (where `require_auth` is off) are one mailbox, the
        account, as the rate and the quota count them."""
        cap = self.limits.max_connections_per_user
        if cap is None:
            return None
        peers = sorted(n for n, s in self._sessions.items() if s.open and s.user == state.user)
        if state.number in peers[:cap]:
            return None
        return self._refuse("max_connections_per_user", self.replies.user_connections, False)

    def _content_refusal(
        self, meters: Meters, recipients: tuple[str, ...], size: int, now: float
    ) -> Decision | None:
        max_bytes = self.limits.max_message_bytes
        refused = checks.content_limit(
            self.limits, meters, recipients, size, now, max_bytes, smtp=True, margins=self.margins
        )
        if refused is None:
            return None
        name, fill = refused
        return self._refuse(name, getattr(self.replies, checks.REPLY_LINES[name]), False, fill)

    def _accept(
        self, state: SessionState, now: float, decision: Decision, recipients: tuple[str, ...]
    ) -> Decision:
        state.accepted += 1
        ses_id = wire.ses_id(self.plan.seed, state.number, state.accepted, now, self.salt)
        reply = Answer(self.replies.accepted.code, self.replies.accepted.text.format(ses_id))
        fates = self.suppression.fates(decision.fates, recipients, now=now)
        return dataclasses.replace(decision, reply=reply, ses_id=ses_id, fates=fates)


def _answer(line: Line, fill: str = "", region: str = "us-east-1") -> Answer:
    """A profile's reply line, `{}` filled with `fill` when given, `{region}` with `region`."""
    return Answer(line.code, line.text.format(fill, region=region.upper()) if fill else line.text)


def _after(rules: Decision, then: Decision) -> Decision:
    """`then`, preceded by what rules that let the command proceed did (their delays, added
    to a limit's own: a tarpit's; the outcomes they decided for the message)."""
    if not rules.fired:
        return then
    delay_s, fates = rules.delay_s + then.delay_s, rules.fates + then.fates
    return dataclasses.replace(then, delay_s=delay_s, fired=rules.fired + then.fired, fates=fates)
