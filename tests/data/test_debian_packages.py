"""The embedded `debian_packages` corpus: splits, labels, no overlap, determinism."""

import functools
import shutil
import tempfile

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_pt import data
from keras_pt.data import debian_packages
from tests.test_case import TestCase


@functools.lru_cache(maxsize=None)
def debian_data_dir():
    """A TFDS data_dir with debian_packages built once per test session."""
    data_dir = tempfile.mkdtemp(prefix="debian_packages_")
    tfds.builder("debian_packages", data_dir=data_dir).download_and_prepare()
    return data_dir


@functools.lru_cache(maxsize=None)
def examples(split):
    builder = tfds.builder("debian_packages", data_dir=debian_data_dir())
    return list(tfds.as_numpy(builder.as_dataset(split=split)))


class DebianPackagesTest(TestCase):
    def setUp(self):
        super().setUp()
        if shutil.which("apt-cache") is None:
            self.skipTest("not a Debian system: no apt-cache and package index")

    @pytest.mark.slow
    def test_builder_splits_and_labels(self):
        info = tfds.builder("debian_packages", data_dir=debian_data_dir()).info
        self.assertEqual(set(info.splits.keys()), set(debian_packages.SPLITS))
        self.assertEqual(info.features["label"].names, list(debian_packages.CLASS_NAMES))
        sizes = {name: info.splits[name].num_examples for name in info.splits.keys()}
        labelled = sizes["train"] + sizes["validation"] + sizes["test"]
        self.assertGreater(labelled, 10_000)
        self.assertGreater(sizes["unsupervised"], 20_000)
        # The source hash gives ~70/10/20.
        self.assertAllClose(
            [sizes["train"] / labelled, sizes["validation"] / labelled, sizes["test"] / labelled],
            [0.7, 0.1, 0.2],
            atol=0.05,
        )
        self.assertEqual(info.metadata["origin"], "apt-cache dumpavail")
        for split in debian_packages.SPLITS:
            for ex in examples(split):
                section, source = ex["section"].decode(), ex["source"].decode()
                self.assertEqual(debian_packages.split_of(section, source), split)
                if split == "unsupervised":
                    self.assertEqual(ex["label"], -1)
                    self.assertNotIn(section, debian_packages.CLASS_NAMES)
                else:
                    self.assertEqual(ex["label"], debian_packages.CLASS_NAMES.index(section))
                self.assertGreaterEqual(len(ex["text"].decode()), debian_packages.MIN_CHARS)
        # Every class has enough examples for 20 labels per class and a test score.
        num_classes = debian_packages.NUM_CLASSES
        train_counts = np.bincount([ex["label"] for ex in examples("train")], minlength=num_classes)
        test_counts = np.bincount([ex["label"] for ex in examples("test")], minlength=num_classes)
        self.assertTrue(np.all(train_counts >= 100), train_counts)
        self.assertTrue(np.all(test_counts >= 20), test_counts)

    @pytest.mark.slow
    def test_no_overlap_between_splits(self):
        texts = {s: {ex["text"].decode().casefold() for ex in examples(s)} for s in debian_packages.SPLITS}
        sources = {s: {ex["source"] for ex in examples(s)} for s in debian_packages.SPLITS}
        packages = [ex["package"] for s in debian_packages.SPLITS for ex in examples(s)]
        self.assertEqual(len(packages), len(set(packages)))
        for i, a in enumerate(debian_packages.SPLITS):
            for b in debian_packages.SPLITS[i + 1 :]:
                self.assertFalse(texts[a] & texts[b], (a, b))
                # Sibling packages of one source stay in one split (unsupervised
                # text comes from training sources only).
                if "unsupervised" not in (a, b):
                    self.assertFalse(sources[a] & sources[b], (a, b))
        for held_out in ("validation", "test"):
            self.assertFalse(sources[held_out] & sources["unsupervised"])

    def test_harvest_is_deterministic_and_excludes(self):
        first, second = debian_packages.harvest(), debian_packages.harvest()
        self.assertEqual(first, second)
        names = [r["package"] for r in first["records"]]
        self.assertEqual(names, sorted(names))
        self.assertFalse([n for n in names if n.startswith("fortune") or "wordnet" in n])
        self.assertEqual(debian_packages.bucket_split("curl"), debian_packages.bucket_split("curl"))

    def test_parse_and_harvest_rules(self):
        control = [
            "Package: b-tool",
            "Source: b (1.0-1)",
            "Description: Tool   for the b format",
            " A long description line.",
            "Section: contrib/utils",
            "",
            "Package: a-tool",
            "Description: tool for the B format",  # the same text, case aside: kept once
            "Section: utils",
            "",
            "Package: c",
            "Description: short",  # too short
            "Section: net",
            "",
            "Package: fortunes-x",
            "Description: data files containing fortune cookies",
            "Section: games",
        ]
        records = debian_packages.parse_records(control)
        self.assertLen(records, 4)
        harvested = debian_packages.harvest(records)["records"]
        self.assertEqual(
            harvested, [{"package": "a-tool", "source": "a-tool", "section": "utils", "text": "tool for the B format"}]
        )
        self.assertEqual(debian_packages.harvest(records[:1])["records"][0]["source"], "b")
        self.assertEqual(debian_packages.harvest(records[:1])["records"][0]["section"], "utils")

    @pytest.mark.slow
    def test_registered_text_dataset(self):
        spec = data.text_dataset_spec("debian_packages")
        self.assertEqual(spec.num_classes, debian_packages.NUM_CLASSES)
        data_dir = debian_data_dir()
        train = data.load_text_dataset("debian_packages", "train", data_dir=data_dir)
        subset = list(data.labeled_text_subset(train, 20, seed=0).as_numpy_iterator())
        self.assertLen(subset, 20 * debian_packages.NUM_CLASSES)
        corpus = {t.decode() for t in data.load_pretraining_texts("debian_packages", data_dir=data_dir).as_numpy_iterator()}
        test_texts = {
            t.decode() for t, _ in data.load_text_dataset("debian_packages", "test", data_dir=data_dir).as_numpy_iterator()
        }
        self.assertLen(corpus, len(examples("train")) + len(examples("unsupervised")))
        self.assertFalse(corpus & test_texts)
