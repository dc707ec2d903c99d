"""The curriculum plan as a pure function: schedules, orders, mixing, group streams, sharding and epochs."""
import numpy as np
import pytest
from fairseq.data.iterators import GroupedIterator, ShardedIterator

from fairseq_ssr.curriculum import POOL, build_schedule, plan_epoch, update_groups


def make_pass_fn(batches_per_pass, seed=0):
    """Batches of group g in pass p: arrays ``[g, p, b]`` for b in a reshuffled order (a stand-in for indices)."""

    def make_pass(group, pass_index):
        order = np.random.default_rng([seed, group % 97, pass_index]).permutation(batches_per_pass[group])
        return [np.array([group, pass_index, b]) for b in order]

    return make_pass


def test_even_split_hard_switch_at_exact_updates():
    s = build_schedule(3, "easy-to-hard", 30)
    assert s.switches == (10, 20)
    groups = update_groups(s, seed=1, stop=35)
    assert groups.tolist() == [0] * 10 + [1] * 10 + [2] * 15  # past the schedule: the last phase
    assert "g1 for updates 11-20" in s.describe()


def test_explicit_schedule_and_anti_curriculum():
    s = build_schedule(3, "hard-to-easy", 12, switches=[4, 9])
    assert update_groups(s, seed=1, stop=12).tolist() == [2] * 4 + [1] * 5 + [0] * 3


def test_no_curriculum_is_one_pooled_stream_and_the_anti_curriculum_the_exact_reverse():
    s = build_schedule(3, "none", 12)
    assert update_groups(s, seed=5, stop=12).tolist() == [POOL] * 12
    batches, groups = plan_epoch(s, make_pass_fn({POOL: 7}), seed=5, epoch=1, update_freq=2, num_shards=1)
    assert groups.tolist() == [POOL] * 12 and all(b[0] == POOL for b in batches)
    forward = update_groups(build_schedule(5, "easy-to-hard", 50, mix="gradual"), seed=3, stop=50)
    backward = update_groups(build_schedule(5, "hard-to-easy", 50, mix="gradual"), seed=3, stop=50)
    assert (backward == 4 - forward).all()


def test_gradual_mix_grows_the_next_groups_share_and_keeps_the_majority_switch():
    s = build_schedule(2, "easy-to-hard", 4000, mix="gradual")
    groups = update_groups(s, seed=3, stop=4000)

    def share_of_g1(a, b):
        return float((groups[a:b] == 1).mean())

    assert share_of_g1(0, 1000) == 0.0 and share_of_g1(3000, 4000) == 1.0  # pure before/after the phase centres
    assert share_of_g1(1000, 1500) < share_of_g1(1500, 2000) < share_of_g1(2000, 2500) < share_of_g1(2500, 3000)
    assert abs(share_of_g1(1900, 2100) - 0.5) < 0.1
    assert share_of_g1(1500, 2000) < 0.5 < share_of_g1(2000, 2500)  # the majority switches where 'hard' does


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_groups=3, order="easy-to-hard", total=30, switches=[10]), "needs 2 update numbers"),
    (dict(num_groups=3, order="easy-to-hard", total=30, switches=[20, 10]), "increase strictly"),
    (dict(num_groups=3, order="easy-to-hard", total=30, switches=[10, 30]), "increase strictly"),
    (dict(num_groups=3, order="easy-to-hard", total=0), "set --max-update"),
    (dict(num_groups=4, order="easy-to-hard", total=3), "increase strictly"),
    (dict(num_groups=3, order="none", total=30, switches=[10, 20]), "has no schedule"),
    (dict(num_groups=3, order="none", total=30, mix="gradual"), "no phases"),
    (dict(num_groups=3, order="sideways", total=30), "order must be one of"),
])
def test_bad_schedules_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        build_schedule(**kwargs)


def test_groups_cycle_with_a_fresh_shuffle_per_pass():
    s = build_schedule(2, "easy-to-hard", 10)
    batches, groups = plan_epoch(s, make_pass_fn([3, 4]), seed=1, epoch=1, update_freq=1, num_shards=1)
    assert groups.tolist() == [0] * 5 + [1] * 5
    g0 = [tuple(b) for b in batches[:5]]
    assert [b[1] for b in g0] == [0, 0, 0, 1, 1]  # pass 0 (3 batches), then pass 1
    assert sorted(b[2] for b in g0[:3]) == [0, 1, 2]  # each pass holds every batch once
    assert all(b[0] == 1 for b in batches[5:])


def test_an_update_never_spans_two_passes():
    s = build_schedule(1, "easy-to-hard", 4)
    batches, _ = plan_epoch(s, make_pass_fn([5]), seed=1, epoch=1, update_freq=2, num_shards=1)
    passes = [[int(b[1]) for b in batches[2 * u:2 * u + 2]] for u in range(4)]
    assert passes == [[0, 0], [0, 0], [1, 1], [1, 1]]  # the fifth batch of each pass is left out
    with pytest.raises(ValueError, match="group 0 makes 1 batches per pass, fewer than one update takes"):
        plan_epoch(s, make_pass_fn([1]), seed=1, epoch=1, update_freq=1, num_shards=2)


def test_plan_is_a_pure_function_and_later_epochs_continue_the_streams():
    s = build_schedule(3, "easy-to-hard", 12, mix="gradual")
    args = dict(seed=7, update_freq=2, num_shards=2)
    first, g1 = plan_epoch(s, make_pass_fn([5, 6, 7]), epoch=1, **args)
    again, _ = plan_epoch(s, make_pass_fn([5, 6, 7]), epoch=1, **args)
    assert len(first) == 12 * 4 and all(np.array_equal(a, b) for a, b in zip(first, again))
    second, g2 = plan_epoch(s, make_pass_fn([5, 6, 7]), epoch=2, **args)
    assert g2.tolist() == [2] * 12
    used = {tuple(b) for b in first if b[0] == 2}
    assert not used & {tuple(b) for b in second[:4]}  # epoch 2 picks up group 2 where epoch 1 left it


@pytest.mark.parametrize("order", ["easy-to-hard", "none"])
def test_every_rank_sees_disjoint_batches_of_the_same_group_at_every_update(order):
    s = build_schedule(3, order, 9)
    update_freq, shards = 2, 2
    batches, groups = plan_epoch(s, make_pass_fn({0: 4, 1: 5, 2: 6, POOL: 15}), seed=2, epoch=1,
                                 update_freq=update_freq, num_shards=shards)
    per_rank = [list(GroupedIterator(ShardedIterator(batches, shards, r), update_freq)) for r in range(shards)]
    assert [len(u) for u in per_rank] == [9, 9]
    for u in range(9):
        seen = [tuple(b) for rank in per_rank for b in rank[u]]
        assert {b[0] for b in seen} == {groups[u]} and (groups[u] == POOL) == (order == "none")
        assert len(seen) == len(set(seen)) == update_freq * shards
