"""The text recipes on users' own files (CSV with named columns, a .txt file)."""

import csv
import os

import pytest

from keras_pt import data, recipes
from tests.test_case import TestCase


def _docstrings(n_per_class=30):
    """Real text with labels: docstrings of three stdlib modules' functions."""
    import inspect
    import json
    import os as os_module
    import re

    rows = []
    for label, module in enumerate((json, os_module.path, re)):
        count = 0
        for name in sorted(dir(module)):
            doc = inspect.getdoc(getattr(module, name, None)) or ""
            if len(doc) > 40 and count < n_per_class:
                rows.append({"doc": " ".join(doc.split())[:400], "module": module.__name__})
                count += 1
    return rows


class OwnTextTest(TestCase):
    def test_a_csv_with_named_columns(self):
        # The recipes take the path and column names (end to end through the
        # binaries: tests/examples/test_readme_commands.py).
        rows = _docstrings()
        path = os.path.join(self.get_temp_dir(), "docs.csv")
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, ["doc", "module"])
            writer.writeheader()
            writer.writerows(rows)
        with self.assertRaisesRegex(ValueError, "no column 'text'"):
            data.load_texts(path)
        texts = data.load_texts(path, text_column="doc", label_column="module")
        self.assertEqual(texts.num_classes, len({r["module"] for r in rows}))

    @pytest.mark.slow
    def test_minigpt_on_a_text_file(self):
        path = os.path.join(self.get_temp_dir(), "corpus.txt")
        with open(path, "w") as f:
            f.write("\n".join(r["doc"] for r in _docstrings()))
        result = recipes.pretrain_minigpt(
            dataset=path,
            model_dir=self.get_temp_dir(),
            steps=3,
            batch_size=8,
            sequence_length=32,
            vocabulary_size=300,
            strategy="default",
            verbose=0,
        )
        self.assertGreater(result.initial_perplexity, result.perplexity)
        with self.assertRaisesRegex(ValueError, "has no labels; classification needs a label column"):
            data.load_text_dataset(path, "train")
