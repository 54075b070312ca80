"""The one dataset registry (training/datasets.py): names round-trip between the cache's and the
paper's, every reader of a dataset fact asks it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from training.datasets import (
    DATASETS,
    REGISTRY,
    cache_name,
    find_dataset,
    get_dataset,
    load_dataset,
    paper_datasets,
    paper_name,
)

PAPER = Path(__file__).resolve().parents[1] / "data" / "paper"


def test_every_name_of_a_dataset_finds_the_same_record():
    for d in REGISTRY.values():
        for n in d.names:
            assert find_dataset(n) is d and find_dataset(n.upper()) is d
        assert cache_name(d.name) == d.name
        if d.paper_name:
            assert cache_name(d.paper_name) == d.name and paper_name(d.name) == d.paper_name
            assert paper_name(cache_name(d.paper_name)) == d.paper_name


def test_no_two_datasets_share_a_name():
    names = [{n.lower() for n in d.names} for d in REGISTRY.values()]
    assert sum(len(n) for n in names) == len(set().union(*names))


def test_the_paper_names_are_the_ones_its_tables_print():
    printed = set(pd.read_csv(PAPER / "table1_accuracy.csv")["dataset"]) | set(
        pd.read_csv(PAPER / "table2_pearson.csv")["dataset"])
    assert {d.paper_name for d in paper_datasets()} == printed
    assert [d.paper_name for d in paper_datasets()] == ["CIFAR10", "CIFAR100", "FashionMNIST"]


def test_unknown_names_are_refused_or_passed_through_as_documented():
    assert find_dataset("mnist") is None and paper_name("digits") == "" and cache_name("svhn") == "svhn"
    with pytest.raises(ValueError, match="Expected dataset name in .*'mnist'"):
        get_dataset("mnist")


def test_the_record_sizes_match_what_the_loader_returns_for_digits():
    d, data = get_dataset("digits"), load_dataset("digits")
    assert (len(data.train_labels), len(data.test_labels), data.num_classes) == (d.n_train, d.n_test, d.num_classes)
    assert tuple(REGISTRY) == DATASETS == ("digits", "fashion-mnist", "cifar10", "cifar100")


def test_the_published_sizes_are_the_official_splits():
    sizes = {d.paper_name: (d.n_train, d.n_test, d.num_classes) for d in paper_datasets()}
    assert sizes == {"CIFAR10": (50_000, 10_000, 10), "CIFAR100": (50_000, 10_000, 100),
                     "FashionMNIST": (60_000, 10_000, 10)}
