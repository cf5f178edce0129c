"""The state's copy-on-write tables behave as dicts, and a copy never sees the other's
changes (published states are shared with readers while the next apply works on a fork)."""

from __future__ import annotations

import os
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from hacluster.core.cow import Generations, ShardedDict

ops = st.lists(st.tuples(st.sampled_from(["set", "del", "copy"]),
                         st.text(alphabet="abcdefgh", min_size=1, max_size=3),
                         st.integers()), max_size=200)


@settings(max_examples=300, deadline=None)
@given(ops=ops)
def test_a_sharded_dict_is_a_dict_and_its_copies_are_independent(
        ops: list[tuple[str, str, int]]) -> None:
    table: ShardedDict[int] = ShardedDict()
    model: dict[str, int] = {}
    frozen: list[tuple[ShardedDict[int], dict[str, int]]] = []
    for op, key, value in ops:
        if op == "set":
            table[key] = value
            model[key] = value
        elif op == "del" and key in model:
            del table[key]
            del model[key]
        elif op == "copy":  # the old one is kept as published; work goes on in the copy
            frozen.append((table, dict(model)))
            table = table.copy()
        assert len(table) == len(model) and (key in table) == (key in model)
    assert dict(table.items()) == model and sorted(table) == sorted(model)
    assert sorted(table.values()) == sorted(model.values()) and table == model
    for old, then in frozen:
        assert dict(old.items()) == then and len(old) == len(then)


def test_a_sharded_dict_iterates_alike_wherever_it_is_built() -> None:
    """Replicas in other processes (another str hash seed) must meet the keys in one order."""
    keys = [f"vm{i}" for i in range(500)]
    a = ShardedDict((k, 0) for k in keys)
    b = ShardedDict((k, 0) for k in reversed(keys))
    assert sorted(a) == sorted(b) and list(a) != keys  # shard order, not insertion order
    assert list(ShardedDict((k, 0) for k in a)) == list(a)  # rebuilt from a snapshot: same
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", SHOW], capture_output=True, text=True,
                             check=True, env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        assert out.split() == list(a)


SHOW = ("from hacluster.core.cow import ShardedDict\n"
        "print(*ShardedDict((f'vm{i}', 0) for i in range(500)))")


def test_generations_forget_the_oldest_tenth_and_copy_only_the_newest() -> None:
    recent: Generations[int] = Generations(100)
    for i in range(105):
        recent.add(f"id{i}", i)
    assert list(recent) == [f"id{i}" for i in range(10, 105)] and recent["id10"] == 10
    published = recent.copy()
    recent.add("later", 1)
    assert "later" in recent and "later" not in published and len(published) == 95
