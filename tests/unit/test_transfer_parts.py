"""S3 part sizes: S3's limits (5 MiB..5 GiB a part, 10,000 parts, 5 TiB an object) are never crossed."""

from __future__ import annotations

import threading

from airflow_jobstatus.transfer.sinks import (
    MAX_PART,
    MAX_PARTS,
    MIB,
    MIN_PART,
    PART_SIZE,
    _BufferBudget,
    _PartReader,
    part_size_for,
)

TIB = 1024**4


def test_unknown_size_ten_thousand_parts_hold_the_largest_object() -> None:
    sizes = [part_size_for(n, None) for n in range(1, MAX_PARTS + 1)]
    assert all(MIN_PART <= s <= MAX_PART for s in sizes)
    assert sum(sizes) >= 5 * TIB  # S3's largest object; one size for all stopped at 78 GiB
    assert sum(sizes[:1000]) == 1000 * PART_SIZE  # small streams keep small parts


def test_known_size_one_part_size_that_fits_in_ten_thousand_parts() -> None:
    assert part_size_for(1, 10 * MIB) == PART_SIZE
    for size in (80 * 1024**3, 1 * TIB, 5 * TIB):
        part = part_size_for(1, size)
        assert part % MIB == 0 and part <= MAX_PART and part * MAX_PARTS >= size


def test_parts_are_cut_exactly_and_the_last_one_is_known_as_such() -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    reader = _PartReader([data, memoryview(data)[:1000], data])
    first = reader.fill(MIB + 500)
    assert bytes(first) == data + data[:500] and not reader.done
    second = reader.fill(MIB + 500)
    assert bytes(second) == data[500:1000] + data and reader.done
    exact = _PartReader([data, data])
    exact.fill(MIB)
    assert not exact.done
    exact.fill(MIB)
    assert exact.done  # the stream ended with the part: no empty part follows


def test_a_part_larger_than_the_budget_waits_for_the_whole_budget() -> None:
    budget = _BufferBudget(10)
    assert budget.acquire(4) == 4
    got: list[int] = []
    waiter = threading.Thread(target=lambda: got.append(budget.acquire(50)))
    waiter.start()
    waiter.join(0.2)
    assert got == []  # 6 free: the oversized part waits
    budget.release(4)
    waiter.join(5)
    assert got == [10]


def test_a_small_object_costs_its_size_and_a_longer_stream_still_gets_whole_parts() -> None:
    data = b"x" * 1000
    small = _PartReader([data])
    part = small.fill(PART_SIZE, 1000)
    assert bytes(part) == data and small.done
    lying = _PartReader([data] * 3)  # announced 1000 bytes, sends 3000
    part = lying.fill(2500, 1000)
    assert len(part) == 2500 and not lying.done
    assert len(lying.fill(2500)) == 500 and lying.done


def test_the_owner_of_uploads_is_the_task_instance_whatever_the_try() -> None:
    from airflow_jobstatus.transfer.sinks import delivery_owner

    owner = delivery_owner("dag", "deliver", "manual__1", -1)
    assert owner == delivery_owner("dag", "deliver", "manual__1", None)  # every try, mapped or not
    others = {
        delivery_owner("dag", "deliver", "manual__2", -1),  # another run
        delivery_owner("dag", "deliver", "manual__1", 0),  # another mapped instance
        delivery_owner("dag", "deliver_b", "manual__1", -1),  # another task
        delivery_owner("dag2", "deliver", "manual__1", -1),  # another DAG
    }
    assert owner not in others and len(others) == 4
