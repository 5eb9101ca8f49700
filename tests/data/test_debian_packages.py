"""The embedded `debian_packages` corpus: splits, labels, no overlap,
determinism, debtags, and its sentence-embedding pairs."""

import functools
import shutil
import tempfile
import types

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_pt import data
from keras_pt.data import debian_packages
from keras_pt.recipes import sentence_embeddings
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

    @pytest.mark.slow
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
            harvested,
            [
                {
                    "package": "a-tool",
                    "source": "a-tool",
                    "section": "utils",
                    "text": "tool for the B format",
                    "tags": [],
                    "tag_text": "",
                }
            ],
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
        corpus = {
            t.decode() for t in data.load_pretraining_texts("debian_packages", data_dir=data_dir).as_numpy_iterator()
        }
        test_texts = {
            t.decode()
            for t, _ in data.load_text_dataset("debian_packages", "test", data_dir=data_dir).as_numpy_iterator()
        }
        self.assertLen(corpus, len(examples("train")) + len(examples("unsupervised")))
        self.assertFalse(corpus & test_texts)

    @pytest.mark.slow
    def test_tags_in_the_built_data_set(self):
        tagged = [ex for ex in examples("test") if len(ex["tags"])]
        # About half of the packages carry debtags.
        self.assertGreater(len(tagged), 0.3 * len(examples("test")))
        for ex in tagged:
            tags = [t.decode() for t in ex["tags"]]
            self.assertTrue(all("::" in t and "TODO" not in t for t in tags), tags)
            self.assertEqual(ex["tag_text"].decode(), debian_packages.tag_text(tags))
        for ex in examples("test"):
            if not len(ex["tags"]):
                self.assertEqual(ex["tag_text"], b"")

    @pytest.mark.slow
    def test_sentence_pairs_are_text_and_tag_text(self):
        data_dir = debian_data_dir()
        self.assertEqual(data.pair_names("debian_packages"), ("text", "tag_text"))
        pairs = list(data.load_sentence_pairs("debian_packages", "test", data_dir=data_dir).as_numpy_iterator())
        expected = [(ex["text"], ex["tag_text"]) for ex in examples("test") if ex["tag_text"]]
        self.assertEqual(pairs, expected)
        self.assertTrue(all(a and b for a, b in pairs))
        # Many packages share one tag set: the held-out retrieval pairs keep
        # each query and candidate text once.
        config = types.SimpleNamespace(dataset="debian_packages", data_dir=data_dir, num_candidates=32)
        queries, candidates = sentence_embeddings._heldout_pairs(config)
        self.assertLen(set(queries), len(queries))
        self.assertLen(set(candidates), len(candidates))
        self.assertLess(len(candidates), len(pairs))
        self.assertGreater(len(candidates), 500)
        partner = {a.decode(): b.decode() for a, b in pairs}
        self.assertTrue(all(partner[q] == c for q, c in zip(queries, candidates)))


class DebtagsTest(TestCase):
    """Parsing and rendering of debtags, on control text given in the test."""

    def test_tag_field_continuation_lines_and_placeholders(self):
        control = [
            "Package: ed-tool",
            "Description: line editor for text files",
            " The long description, which is not part of the field.",
            "Tag: devel::lang:TODO, implemented-in::c, interface::commandline,",
            " role::program, use::editing, works-with::text,",
            "\tworks-with::image:raster, role::TODO, suite::gnu",
            "Section: editors",
            "",
            "Package: no-tags",
            "Description: a package without any debtags",
            "Section: utils",
        ]
        records = debian_packages.parse_records(control)
        self.assertLen(records, 2)
        self.assertEqual(records[0]["Description"], "line editor for text files")
        self.assertEqual(records[0]["Section"], "editors")
        tags = debian_packages.parse_tags(records[0]["Tag"])
        self.assertEqual(
            tags,
            [
                "implemented-in::c",
                "interface::commandline",
                "role::program",
                "use::editing",
                "works-with::text",
                "works-with::image:raster",
                "suite::gnu",
            ],
        )
        harvested = {r["package"]: r for r in debian_packages.harvest(records)["records"]}
        self.assertEqual(harvested["ed-tool"]["tags"], tags)
        self.assertEqual(harvested["ed-tool"]["tag_text"], "c commandline program editing text image raster gnu")
        self.assertEqual(harvested["no-tags"]["tags"], [])
        self.assertEqual(harvested["no-tags"]["tag_text"], "")

    def test_tag_text_rendering(self):
        self.assertEqual(debian_packages.tag_text(["use::editing", "works-with::text"]), "editing text")
        # Values only; `:`, `-` and `_` split words; each word once, in order.
        self.assertEqual(
            debian_packages.tag_text(["devel::lang:c++", "role::shared-lib", "devel::library", "role::devel-lib"]),
            "lang c++ shared lib library devel",
        )
        self.assertEqual(debian_packages.tag_text(["x11::application", "web::some_thing"]), "application some thing")
        self.assertEqual(debian_packages.tag_text([]), "")
        self.assertEqual(debian_packages.parse_tags(" a::b ,a::b, , c::TODO, d::lang:todo, junk"), ["a::b"])


class SentencePairChoiceTest(TestCase):
    def test_first_sentence_pairs_without_pair_features(self):
        self.assertIsNone(data.text_dataset_spec("stdlib_docs").pair_features)
        self.assertEqual(data.pair_names("stdlib_docs"), ("first sentence", "remainder"))
        first, rest = next(iter(data.load_sentence_pairs("stdlib_docs", "test").as_numpy_iterator()))
        self.assertRegex(first.decode(), r"[.!?]$")
        self.assertTrue(rest)
        with self.assertRaisesRegex(ValueError, "no paired features.*debian_packages"):
            data.load_feature_pairs("stdlib_docs", "test")

    def test_distinct_pairs(self):
        firsts = ["a", "b", "a", "c", "d"]
        seconds = ["x", "x", "y", "z", "w"]
        # "b" repeats the candidate "x", the second "a" repeats the query "a".
        self.assertEqual(data.distinct_pairs(firsts, seconds), (["a", "c", "d"], ["x", "z", "w"]))
        self.assertEqual(data.distinct_pairs([], []), ([], []))
        with self.assertRaisesRegex(ValueError, "pass pairs"):
            data.distinct_pairs(["a"], [])
