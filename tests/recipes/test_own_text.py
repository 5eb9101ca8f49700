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


@pytest.mark.slow
class OwnTextTest(TestCase):
    def test_minibert_pretrain_then_finetune_on_a_csv(self):
        rows = _docstrings()
        path = os.path.join(self.get_temp_dir(), "docs.csv")
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, ["doc", "module"])
            writer.writeheader()
            writer.writerows(rows)
        with self.assertRaisesRegex(ValueError, "no column 'text'"):
            data.load_texts(path)
        # The recipes take the path; the column names come with load_texts.
        source = os.path.join(self.get_temp_dir(), "docs.jsonl")
        texts = data.load_texts(path, text_column="doc", label_column="module")
        self.assertEqual(texts.num_classes, len({r["module"] for r in rows}))
        import json

        with open(source, "w") as f:
            for r in rows:
                f.write(json.dumps({"text": r["doc"], "label": r["module"]}) + "\n")
        model_dir = self.get_temp_dir()
        pre = recipes.pretrain_minibert(
            dataset=source,
            model_dir=os.path.join(model_dir, "pre"),
            steps=4,
            batch_size=8,
            sequence_length=32,
            vocabulary_size=300,
            strategy="default",
            verbose=0,
        )
        self.assertTrue(os.path.exists(pre.files["model"]))
        result = recipes.finetune_minibert(
            pre.files["model"],
            dataset=source,
            model_dir=os.path.join(model_dir, "ft"),
            labels_per_class=4,
            epochs=1,
            steps_per_epoch=2,
            batch_size=4,
            strategy="default",
            verbose=0,
            export=False,
            baseline_draws=1,
        )
        self.assertBetween(result.accuracy["pretrained"], 0.0, 1.0)
        self.assertIn("tfidf_svm", result.baselines)

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
