"""Young programs take turns on the cores (playground.whole.Turn, issue #22's eight-at-once number): at most one
young run per core, the next waits in order; a turn goes at the end of a run or after YOUNG_S, and a waiter never
waits longer than YOUNG_S."""
from __future__ import annotations

import threading
import time

from playground import whole


def test_a_turn_per_core_the_next_waits_its_turn_and_never_longer_than_young_s(monkeypatch):
    monkeypatch.setattr(whole, "_cores", lambda sem=threading.Semaphore(1): sem)    # one core
    first = whole.Turn()
    got = []

    def second():
        began = time.monotonic()
        turn = whole.Turn()
        got.append((time.monotonic() - began, turn))

    waiter = threading.Thread(target=second)
    waiter.start()
    time.sleep(0.05)
    assert not got                                          # waiting for the core
    first.give_up(time.monotonic())                         # still young: keeps its turn
    time.sleep(0.02)
    assert not got
    first.give_up()                                         # the run ended: the next goes at once
    waiter.join(5)
    waited, turn = got[0]
    assert 0.04 < waited < whole.YOUNG_S and turn._held

    # a long run gives its turn up once it is no longer young; a waiter behind a run that never gives up starts
    # anyway after YOUNG_S (a spinning program delays another by at most that)
    turn.give_up(turn.until)
    assert whole._cores().acquire(blocking=False)           # free again
    began = time.monotonic()
    late = whole.Turn()
    assert whole.YOUNG_S * 0.9 <= time.monotonic() - began < whole.YOUNG_S + 1.0 and not late._held
    late.give_up()                                          # holds nothing: releases nothing
    whole._cores().release()
    assert whole._cores().acquire(blocking=False)
    whole._cores().release()
