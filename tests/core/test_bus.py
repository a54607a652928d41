"""The typed bus: wrong types fail at the call, FIFO and phase order, request/reply,
strict mode."""

from __future__ import annotations

import pytest

from ml4t.backtest import Bus, BusError, ComponentError, Phase, RequestTopic, Topic

from ._graph import Num, Word

NUMS = Topic("nums", Num)
WORDS = Topic("words", Word)
EITHER = Topic("either", Num | Word)


def test_publishing_the_wrong_type_raises_at_the_call() -> None:
    bus = Bus()
    bus.subscribe(NUMS, lambda e: None, subscriber="s")
    with pytest.raises(BusError, match=r"cannot publish Word on topic 'nums', which carries Num"):
        bus.publish(NUMS, Word(ts_event=0, text="x"))
    assert bus.dispatcher.pending == 0


def test_publishing_a_non_event_raises() -> None:
    bus = Bus()
    with pytest.raises(BusError, match="cannot publish dict"):
        bus.publish(NUMS, {"value": 1})  # type: ignore[arg-type]


def test_union_topic_accepts_each_member_and_nothing_else() -> None:
    bus = Bus()
    bus.publish(EITHER, Num(ts_event=0, value=1))
    bus.publish(EITHER, Word(ts_event=0, text="a"))
    with pytest.raises(BusError):
        bus.publish(EITHER, object())  # type: ignore[arg-type]


def test_topic_must_carry_event_types() -> None:
    with pytest.raises(BusError, match="not an Event subclass"):
        Topic("bad", int)  # type: ignore[arg-type]


def test_same_name_with_another_type_is_refused() -> None:
    bus = Bus()
    bus.subscribe(NUMS, lambda e: None)
    impostor = Topic("nums", Word)
    with pytest.raises(BusError, match="already declared"):
        bus.publish(impostor, Word(ts_event=0, text="x"))
    with pytest.raises(BusError, match="already declared"):
        bus.subscribe(impostor, lambda e: None)


def test_non_callable_handler_is_refused() -> None:
    with pytest.raises(BusError, match="not callable"):
        Bus().subscribe(NUMS, 42)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_each_subscriber_gets_events_in_publish_order() -> None:
    bus = Bus()
    seen: dict[str, list[int]] = {"a": [], "b": []}
    bus.subscribe(NUMS, lambda e: seen["a"].append(e.value), subscriber="a")
    bus.subscribe(NUMS, lambda e: seen["b"].append(e.value), subscriber="b")
    for i in range(100):
        bus.publish(NUMS, Num(ts_event=i, value=i))
    await bus.drain()
    assert seen == {"a": list(range(100)), "b": list(range(100))}


@pytest.mark.anyio
async def test_lower_phase_runs_first_then_publish_order() -> None:
    bus = Bus()
    order: list[str] = []
    bus.subscribe(NUMS, lambda e: order.append(f"record{e.value}"), phase=Phase.RECORD)
    bus.subscribe(NUMS, lambda e: order.append(f"strategy{e.value}"), phase=Phase.STRATEGY)
    bus.subscribe(NUMS, lambda e: order.append(f"execution{e.value}"), phase=Phase.EXECUTION)
    bus.publish(NUMS, Num(ts_event=0, value=1))
    bus.publish(NUMS, Num(ts_event=0, value=2))
    await bus.drain()
    assert order == [
        "execution1",
        "execution2",
        "strategy1",
        "strategy2",
        "record1",
        "record2",
    ]


@pytest.mark.anyio
async def test_event_published_by_a_handler_at_a_lower_phase_jumps_the_queue() -> None:
    bus = Bus()
    fills = Topic("fills", Word)
    order: list[str] = []

    def broker(e: Num) -> None:
        order.append("broker")
        bus.publish(fills, Word(ts_event=0, text="fill"))

    bus.subscribe(NUMS, broker, phase=Phase.EXECUTION)
    bus.subscribe(NUMS, lambda e: order.append("strategy-sees-bar"), phase=Phase.STRATEGY)
    bus.subscribe(fills, lambda e: order.append("strategy-sees-fill"), phase=Phase.EXECUTION)
    bus.publish(NUMS, Num(ts_event=0, value=1))
    await bus.drain()
    assert order == ["broker", "strategy-sees-fill", "strategy-sees-bar"]


@pytest.mark.anyio
async def test_unsubscribed_handler_gets_nothing_more() -> None:
    bus = Bus()
    seen: list[int] = []
    sub = bus.subscribe(NUMS, lambda e: seen.append(e.value))
    bus.publish(NUMS, Num(ts_event=0, value=1))
    await bus.drain()
    bus.unsubscribe(sub)
    bus.publish(NUMS, Num(ts_event=0, value=2))
    await bus.drain()
    assert seen == [1] and not sub.active


@pytest.mark.anyio
async def test_strict_mode_delivers_a_decoded_copy() -> None:
    bus = Bus(strict=True)
    got: list[Num] = []
    bus.subscribe(NUMS, got.append)
    sent = Num(ts_event=3, value=7, path="x")
    bus.publish(NUMS, sent)
    await bus.drain()
    assert got == [sent] and got[0] is not sent


@pytest.mark.anyio
async def test_handler_error_names_subscriber_event_and_time() -> None:
    bus = Bus()

    def boom(e: Num) -> None:
        raise ValueError("bad value")

    bus.subscribe(NUMS, boom, subscriber="exploder")
    bus.publish(NUMS, Num(ts_event=1_700_000_000_000_000_000, value=1))
    with pytest.raises(ComponentError) as info:
        await bus.drain()
    err = info.value
    assert err.component == "exploder" and err.event_type == "Num"
    assert "component 'exploder' failed handling Num at 2023-11-14T22:13:20+00:00" in str(err)
    assert "ValueError: bad value" in str(err)
    assert isinstance(err.__cause__, ValueError)


QUOTE = RequestTopic("quote", Word, Num)


@pytest.mark.anyio
async def test_request_reply_returns_the_responders_answer() -> None:
    bus = Bus(strict=True)
    bus.serve(QUOTE, lambda w: Num(ts_event=w.ts_event, value=len(w.text)), subscriber="quoter")
    reply = await bus.request(QUOTE, Word(ts_event=2, text="hello"))
    assert reply == Num(ts_event=2, value=5)


@pytest.mark.anyio
async def test_async_responder_works() -> None:
    bus = Bus()

    async def answer(w: Word) -> Num:
        return Num(ts_event=0, value=1)

    bus.serve(QUOTE, answer)
    assert (await bus.request(QUOTE, Word(ts_event=0, text=""))).value == 1


@pytest.mark.anyio
async def test_request_errors_are_specific() -> None:
    bus = Bus()
    with pytest.raises(BusError, match="no responder serves request topic 'quote'"):
        await bus.request(QUOTE, Word(ts_event=0, text="x"))
    bus.serve(QUOTE, lambda w: Word(ts_event=0, text="wrong"), subscriber="liar")
    with pytest.raises(BusError, match="responder 'liar' on 'quote' replied Word, expected Num"):
        await bus.request(QUOTE, Word(ts_event=0, text="x"))
    with pytest.raises(BusError, match="cannot send Num on request topic 'quote'"):
        await bus.request(QUOTE, Num(ts_event=0, value=1))  # type: ignore[arg-type]
    with pytest.raises(BusError, match="already has a responder"):
        bus.serve(QUOTE, lambda w: Num(ts_event=0, value=0))


@pytest.mark.anyio
async def test_failing_responder_raises_component_error() -> None:
    bus = Bus()

    def broken(w: Word) -> Num:
        raise KeyError(w.text)

    bus.serve(QUOTE, broken, subscriber="broken")
    with pytest.raises(ComponentError, match="component 'broken' failed answering Word"):
        await bus.request(QUOTE, Word(ts_event=0, text="k"))


@pytest.mark.anyio
async def test_a_retained_topic_hands_a_late_subscriber_everything_published_before() -> None:
    bus = Bus(strict=True)
    facts, news = Topic("facts", Num, retained=True), Topic("news", Num)
    early: list[int] = []
    bus.subscribe(facts, lambda e: early.append(e.value))
    bus.publish(facts, Num(ts_event=1, value=1))
    bus.publish(news, Num(ts_event=1, value=9))  # not retained: nobody hears it later
    bus.publish(facts, Num(ts_event=2, value=2))
    await bus.drain()
    late: list[int] = []
    bus.subscribe(facts, lambda e: late.append(e.value))
    missed: list[int] = []
    bus.subscribe(news, lambda e: missed.append(e.value))
    bus.publish(facts, Num(ts_event=3, value=3))
    await bus.drain()
    assert early == [1, 2, 3]
    assert late == [1, 2, 3]  # the past first, in publish order, then the new
    assert missed == []
