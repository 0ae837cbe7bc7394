"""Operator changes, shared by the command line (``watcher ack|activate|deactivate|silence|outbox
--retry``, :mod:`watcher.cli.ops`) and the HTTP API (``/api/v1/watches/{id}/_ack``…,
:mod:`watcher.http.api_v1`).

They act on the state the daemon keeps in ``<prefix>-state`` (:class:`~watcher.es.state.StateStore`)
and on the outbox, so they work whether or not a daemon runs: the daemon reads a watch's state
at every tick, so a change takes effect at the watch's next execution.

Semantics (docs/semantics.md#status-and-ack, docs/semantics.md#watcher-apis): acking only moves an
``ackable`` action to ``acked`` (any other action is left as it is); no action id or ``_all`` means
every action; activate/deactivate set ``status.state.active`` and change ``status.state.timestamp``
only when the state changes; a silence maps a group key (``*`` for the whole rule) to the time it
ends, and expired silences are dropped at the next change. Every change is saved with optimistic
concurrency: when the daemon saved the watch in between, the change is applied again to the
reloaded state (at most :data:`MAX_SAVE_ATTEMPTS` rounds).

Each saved change appends its operator event (``acked`` per action, ``activated``,
``deactivated``, ``silenced``, ``unsilenced``; docs/events.md#kinds) to ``<prefix>-events``, with a
deterministic id made of the watch id, what changed and the state's new ``_seq_no`` and
``_primary_term``, and ``actor`` saying who (``cli:<user>``, ``api:<token name>``). A request that
changes nothing saves nothing and appends nothing.

Errors: the classes below (all :class:`OperationError`, a :class:`~watcher.errors.WatcherError`);
cluster errors are the Elasticsearch client's exceptions, raised as they come. When the state was
saved but the event could not be appended, the cluster error is raised too (the change stays).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from watcher.delivery.outbox import Outbox
from watcher.engine.alerting import WHOLE_RULE, silence_until
from watcher.errors import WatcherError
from watcher.es.events import EventLog
from watcher.es.state import StateConflict, StateStore, WatchState
from watcher.model.events import Event, event_id
from watcher.model.status import ACKED, AWAITS
from watcher.support.datemath import format_iso_millis, parse_instant, utc_now_millis

__all__ = ["MAX_GROUP_KEY_LENGTH", "MAX_SAVE_ATTEMPTS", "ActionAck", "AckResult", "ActiveResult", "BadValue", "Defined", "DeliveryNotDead",
           "OperationError", "RetryResult", "SilenceResult", "StateKeptChanging", "UnknownAction", "UnknownDelivery",
           "UnknownWatch", "ack", "did_you_mean", "list_silences", "new_state", "retry_dead_delivery", "set_active", "silence",
           "silence_end", "unsilence"]

MAX_SAVE_ATTEMPTS = 5  # reload-and-retry rounds on StateConflict before giving up
MAX_GROUP_KEY_LENGTH = 512  # a silenced group key is recorded in its event (a keyword field: 32766 bytes at most)
AckOutcome = Literal["acked", "already_acked", "not_ackable"]


# -- errors ------------------------------------------------------------------------------------------------

class OperationError(WatcherError):
    """An operator change that cannot be made as asked (nothing was changed)."""


class UnknownWatch(OperationError, LookupError):
    """The watch has neither a saved state nor a definition.

    Attributes:
        watch_id: the name asked for.
        index: the state index searched.
        known: every watch id known (saved states and definitions), for "did you mean".
    """

    def __init__(self, watch_id: str, index: str, known: Iterable[str]):
        self.watch_id, self.index, self.known = watch_id, index, sorted(set(known))
        super().__init__(f"unknown watch [{watch_id}]: no state in {index}{did_you_mean(watch_id, self.known)}")


class UnknownAction(OperationError, LookupError):
    """The watch has no action of that id (neither defined nor in its status)."""

    def __init__(self, watch_id: str, action_id: str, known: list[str]):
        self.watch_id, self.action_id, self.known = watch_id, action_id, known
        super().__init__(f"watch [{watch_id}] has no action [{action_id}] (actions: {', '.join(known) or 'none'})"
                         f"{did_you_mean(action_id, known)}")


class StateKeptChanging(OperationError):
    """Every save conflicted (another process kept saving the watch); try again."""

    def __init__(self, watch_id: str):
        self.watch_id = watch_id
        super().__init__(f"the state of watch [{watch_id}] kept changing while saving ({MAX_SAVE_ATTEMPTS} attempts); "
                         f"try again")


class UnknownDelivery(OperationError, LookupError):
    """No outbox delivery has this id."""

    def __init__(self, delivery_id: str, index: str):
        self.delivery_id, self.index = delivery_id, index
        super().__init__(f"no delivery [{delivery_id}] in {index}")


class DeliveryNotDead(OperationError):
    """Only a dead delivery can be retried; ``state`` is the one it is in (``gone`` if deleted meanwhile)."""

    def __init__(self, delivery_id: str, state: str):
        self.delivery_id, self.state = delivery_id, state
        super().__init__(f"delivery [{delivery_id}] is {state}, not dead: nothing to retry")


class BadValue(OperationError, ValueError):
    """An argument has the wrong form (a duration, a time in the past…); the message says what was expected."""


# -- inputs and results ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Defined:
    """What the definitions say of one watch: its action ids, whether it is active as defined
    (the state a never-saved watch starts from), and whether it is a rule (only a rule's runs
    honour silences; an Elastic Watcher watch's do not). A file with problems counts as ``Defined()``."""

    actions: tuple[str, ...] = ()
    active: bool = True
    rule: bool = True


@dataclasses.dataclass(frozen=True)
class ActionAck:
    """What an ack did to one action: ``result`` (``acked``, ``already_acked``, ``not_ackable``), its
    ``ack_state`` afterwards, and ``never_run`` (the action has no status yet)."""

    result: AckOutcome
    ack_state: str
    never_run: bool


@dataclasses.dataclass(frozen=True)
class AckResult:
    """``state``: as saved (or as loaded, when nothing changed); ``actions``: per action, in order."""

    watch_id: str
    state: WatchState
    actions: dict[str, ActionAck]
    events: list[Event]


@dataclasses.dataclass(frozen=True)
class ActiveResult:
    """``changed``: False when the watch already was in the asked state (nothing saved)."""

    watch_id: str
    state: WatchState
    changed: bool
    events: list[Event]


@dataclasses.dataclass(frozen=True)
class SilenceResult:
    """``group``: the key changed (``*`` = the whole rule); ``was_silenced``: it had a silence that
    had not ended; ``silences``: ``{key: ISO until}`` afterwards, without expired ones."""

    watch_id: str
    state: WatchState
    group: str
    changed: bool
    was_silenced: bool
    silences: dict[str, str]
    events: list[Event]


@dataclasses.dataclass(frozen=True)
class RetryResult:
    """The delivery is ``pending`` again with its attempts reset."""

    delivery_id: str
    state: str = "pending"


# -- helpers -----------------------------------------------------------------------------------------------

def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"; did you mean 'a' or 'b'?"`` with up to three close matches, or ``""``."""
    matches = difflib.get_close_matches(name, sorted(set(known)), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(m) for m in matches)}?" if matches else ""


def silence_end(*, duration: str | None = None, until: str | None = None, now: dt.datetime) -> dt.datetime:
    """When a silence asked as ``duration`` (rule duration: ``30m``, ``2h``, ``1d``) or ``until`` (ISO-8601
    with offset) ends, aware UTC; exactly one of them is given.

    Raises:
        BadValue: neither or both given, a malformed duration or time, a time without offset, or a
            time not in the future.
    """
    if (duration is None) == (until is None):
        raise BadValue("expected exactly one of a duration (for) and an ISO-8601 time (until)")
    if duration is not None:
        try:
            return silence_until(duration, now)
        except ValueError as error:
            raise BadValue(str(error)) from None
    expected = (f"expected an ISO-8601 time with its offset (Z, +01:00), such as 2026-12-01T08:00:00+01:00, "
                f"found {until!r}")
    try:
        written = dt.datetime.fromisoformat(until)
        instant = parse_instant(until)
    except Exception:
        raise BadValue(expected) from None
    if written.tzinfo is None:  # whose local time? refused rather than guessed
        raise BadValue(expected)
    if instant <= now:
        raise BadValue(f"expected a time in the future, found {until!r}")
    return instant.astimezone(dt.timezone.utc)


def new_state(watch_id: str, defined: Defined) -> WatchState:
    """A never-saved state of ``watch_id``: active as its definition says."""
    state = WatchState(watch_id, active=defined.active)
    state.status.active = defined.active
    return state


def _save_with_retry(store: StateStore, watch_id: str, defined: Mapping[str, Defined],
                     change: Callable[[WatchState], tuple[bool, Any]]) -> tuple[WatchState, Any, bool]:
    """Load (or start a never-saved defined watch), apply ``change(state) -> (changed, info)``, save if
    changed; on a conflict reload and apply again. Returns ``(state, info, saved)``."""
    for _ in range(MAX_SAVE_ATTEMPTS):
        state = store.load(watch_id)
        if state is None:
            if watch_id not in defined:
                raise UnknownWatch(watch_id, store.index, [*store.load_all(), *defined])
            state = new_state(watch_id, defined[watch_id])
        changed, info = change(state)
        if not changed:
            return state, info, False
        if state.seq_no is None and not store.es.indices.exists(index=store.index):
            store.ensure()  # never let a first write create the index with a dynamic mapping
        try:
            return store.save(state), info, True
        except StateConflict:
            continue
    raise StateKeptChanging(watch_id)


def _log(es, prefix: str, events: list[Event]) -> list[Event]:
    if events:
        log = EventLog(es, prefix)
        log.ensure()
        log.append(events)
    return events


def _version(state: WatchState) -> tuple[Any, Any]:
    return state.seq_no, state.primary_term


# -- operations --------------------------------------------------------------------------------------------

def ack(es, prefix: str, watch_id: str, action_ids: Iterable[str] = (), *, actor: str,
        defined: Mapping[str, Defined] | None = None, clock: Callable[[], dt.datetime] = utc_now_millis) -> AckResult:
    """Acknowledge actions of ``watch_id`` (Watcher's ack API; every action when ``action_ids`` is empty
    or holds ``_all``).

    Args:
        es: a synchronous Elasticsearch client; prefix: the index prefix.
        actor: who asks (``cli:<user>``, ``api:<token name>``), written in the events.
        defined: ``{watch id: Defined}`` of the loaded definitions (a defined watch never saved can be
            acked; defined actions count as known).
        clock: now, aware UTC (ack timestamps, event times).

    Raises:
        UnknownWatch, UnknownAction (nothing changed), StateKeptChanging.
    """
    defined = defined or {}
    asked = list(action_ids)
    requested = [a for a in asked if a != "_all"]
    everything = not asked or "_all" in asked
    now = clock()

    def apply(state: WatchState):
        known = list(dict.fromkeys([*defined.get(watch_id, Defined()).actions, *state.status.actions]))
        unknown = [a for a in requested if a not in known]
        if unknown and not everything:
            raise UnknownAction(watch_id, unknown[0], known)
        targets = known if everything else requested
        before = {a: state.status.actions[a].ack_state if a in state.status.actions else None for a in targets}
        existing = [a for a in targets if a in state.status.actions]
        changed = state.status.ack(existing, now) if existing else []  # [] would mean "all"
        if changed:
            state.status.version += 1  # Watcher's ack updates the watch document
        outcome = {}
        for action_id in targets:
            if action_id in changed:
                outcome[action_id] = ActionAck("acked", ACKED, False)
            elif before[action_id] == ACKED:
                outcome[action_id] = ActionAck("already_acked", ACKED, False)
            else:
                outcome[action_id] = ActionAck("not_ackable", before[action_id] or AWAITS, before[action_id] is None)
        return bool(changed), outcome

    state, outcome, saved = _save_with_retry(StateStore(es, prefix), watch_id, defined, apply)
    events = [Event(id=event_id("acked", watch_id, action_id, *_version(state)), kind="acked", watch_id=watch_id,
                    time=now, action_id=action_id, actor=actor, message=f"{actor} acked action {action_id}")
              for action_id, result in outcome.items() if saved and result.result == "acked"]
    return AckResult(watch_id, state, outcome, _log(es, prefix, events))


def set_active(es, prefix: str, watch_id: str, active: bool, *, actor: str,
               defined: Mapping[str, Defined] | None = None,
               clock: Callable[[], dt.datetime] = utc_now_millis) -> ActiveResult:
    """Activate (``active`` True) or deactivate ``watch_id`` (Watcher's activate/deactivate APIs).

    Raises:
        UnknownWatch, StateKeptChanging.
    """
    now = clock()

    def apply(state: WatchState):
        if state.active == active:
            return False, None
        state.active = state.status.active = active
        state.status.state_timestamp = now  # only when the state changes, as Watcher's status.state
        state.status.version += 1
        return True, None

    state, _, saved = _save_with_retry(StateStore(es, prefix), watch_id, defined or {}, apply)
    kind = "activated" if active else "deactivated"
    events = [Event(id=event_id(kind, watch_id, *_version(state)), kind=kind, watch_id=watch_id, time=now,
                    actor=actor, message=f"{actor} {kind} the watch")] if saved else []
    return ActiveResult(watch_id, state, saved, _log(es, prefix, events))


def _change_silence(es, prefix: str, watch_id: str, group: str | None, until: dt.datetime | None, *, actor: str,
                    defined: Mapping[str, Defined] | None, now: dt.datetime, listing: bool = False) -> SilenceResult:
    key = WHOLE_RULE if group is None else group
    was_silenced = False

    def apply(state: WatchState):
        nonlocal was_silenced
        current = {k: v for k, v in state.silences.items() if parse_instant(v) > now}  # expired ones go
        was_silenced = key in current
        if listing:
            return False, current
        if until is None:
            current.pop(key, None)
        else:
            current[key] = format_iso_millis(until)
        changed = current != state.silences
        state.silences = current
        return changed, current

    state, silences, saved = _save_with_retry(StateStore(es, prefix), watch_id, defined or {}, apply)
    events = []
    if saved and until is not None:
        events = [Event(id=event_id("silenced", watch_id, key, silences[key], *_version(state)), kind="silenced",
                        watch_id=watch_id, time=now, group=group, actor=actor, details={"until": silences[key]},
                        message=f"{actor} silenced {'the whole rule' if group is None else f'group {group}'} "
                                f"until {silences[key]}")]
    elif saved and was_silenced and not listing:
        events = [Event(id=event_id("unsilenced", watch_id, key, *_version(state)), kind="unsilenced",
                        watch_id=watch_id, time=now, group=group, actor=actor,
                        message=f"{actor} lifted the silence of {'the whole rule' if group is None else f'group {group}'}")]
    return SilenceResult(watch_id, state, key, saved, was_silenced, dict(silences), _log(es, prefix, events))


def silence(es, prefix: str, watch_id: str, until: dt.datetime, *, group: str | None = None, actor: str,
            defined: Mapping[str, Defined] | None = None,
            clock: Callable[[], dt.datetime] = utc_now_millis) -> SilenceResult:
    """Silence ``watch_id`` (or only its ``group`` key) until ``until`` (aware; :func:`silence_end`):
    its matches send no alerts and no recoveries until then (ElastAlert2's ``--silence``).

    Raises:
        BadValue: ``until`` is not in the future, ``group`` is longer than :data:`MAX_GROUP_KEY_LENGTH`,
            or ``defined`` says ``watch_id`` is an Elastic Watcher watch, whose runs ignore silences
            (docs/api.md: ack its actions or deactivate it instead).
        UnknownWatch, StateKeptChanging.
    """
    now = clock()
    if until <= now:
        raise BadValue(f"expected a time in the future, found {format_iso_millis(until)}")
    if group is not None and len(group) > MAX_GROUP_KEY_LENGTH:
        raise BadValue(f"expected a group key of at most {MAX_GROUP_KEY_LENGTH} characters, found {len(group)}")
    if not (defined or {}).get(watch_id, Defined()).rule:
        raise BadValue(f"[{watch_id}] is an Elastic Watcher watch, and silences apply to rules only: "
                       "ack its actions or deactivate it instead")
    return _change_silence(es, prefix, watch_id, group, until, actor=actor, defined=defined, now=now)


def unsilence(es, prefix: str, watch_id: str, *, group: str | None = None, actor: str,
              defined: Mapping[str, Defined] | None = None,
              clock: Callable[[], dt.datetime] = utc_now_millis) -> SilenceResult:
    """Lift the silence of ``watch_id`` (or of its ``group`` key); ``was_silenced`` says whether there was one.

    Raises:
        UnknownWatch, StateKeptChanging.
    """
    return _change_silence(es, prefix, watch_id, group, None, actor=actor, defined=defined, now=clock())


def list_silences(es, prefix: str, watch_id: str, *, defined: Mapping[str, Defined] | None = None,
                  clock: Callable[[], dt.datetime] = utc_now_millis) -> SilenceResult:
    """The silences of ``watch_id`` that have not ended (nothing is saved).

    Raises:
        UnknownWatch.
    """
    return _change_silence(es, prefix, watch_id, None, None, actor="", defined=defined, now=clock(), listing=True)


def retry_dead_delivery(outbox: Outbox, delivery_id: str) -> RetryResult:
    """Send the dead delivery ``delivery_id`` again: ``dead`` → ``pending``, attempts reset. With a running
    outbox (the daemon's) it is offered at once; otherwise a daemon sends it at its next poll.

    Raises:
        UnknownDelivery, DeliveryNotDead (nothing changed).
    """
    try:
        retried = outbox.retry(delivery_id)
    except KeyError:
        raise UnknownDelivery(delivery_id, outbox.store.index) from None
    if not retried:
        current = outbox.store.get(delivery_id)
        raise DeliveryNotDead(delivery_id, current.state if current is not None else "gone")
    return RetryResult(delivery_id)
