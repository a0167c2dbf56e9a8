"""The split helpers (``kwslab.data.sources.split``): hash splits in the right proportions, group splits that
keep every requested split and fill train first."""

import pytest

from kwslab.data.sources.split import hash_split, split_groups


def test_split_helpers():
    # hash split: proportions roughly right on many keys
    splits = [hash_split(f"k{i}", 0.1, 0.2, seed=0) for i in range(4000)]
    assert abs(splits.count("test") / 4000 - 0.2) < 0.03
    assert abs(splits.count("val") / 4000 - 0.1) < 0.03
    # groups: at least one per requested split, train never empty, fractions by item count
    assert sorted(split_groups({"a": 10, "b": 10, "c": 10}, 0.1, 0.1).values()) == ["test", "train", "val"]
    assert list(split_groups({"a": 5, "b": 5}, 0.1, 0.1).values()).count("train") == 1
    assert split_groups({"a": 5}, 0.5, 0.3) == {"a": "train"}
    sizes = {f"s{i}": 10 for i in range(100)}
    got = split_groups(sizes, 0.1, 0.2, seed=7)
    assert abs(list(got.values()).count("test") - 20) <= 1 and abs(list(got.values()).count("val") - 10) <= 1
    with pytest.raises(ValueError, match="must be < 1"):
        split_groups(sizes, 0.5, 0.5)
