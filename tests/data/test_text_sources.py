"""Text data from .txt, .jsonl, .csv files, class folders and lists."""

import csv
import json
import os


from keras_pt import data
from tests.test_case import TestCase

TEXTS = [f"{word} example number {i}" for i, word in enumerate(["alpha", "beta", "gamma"] * 10)]
NAMES = ["first", "second", "third"] * 10


def _pairs(dataset):
    return [
        (x.decode() if isinstance(x, bytes) else tuple(t.decode() for t in x), int(y))
        for x, y in dataset.as_numpy_iterator()
    ]


class TextSourcesTest(TestCase):
    def _check_labelled(self, result, num_classes=3):
        self.assertEqual(result.num_classes, num_classes)
        splits = [_pairs(s) for s in (result.train, result.validation, result.test)]
        self.assertEqual(sum(len(s) for s in splits), 30)
        seen = [text for split in splits for text, _ in split]
        self.assertCountEqual(seen, TEXTS)  # every example once
        for split in splits:
            for text, label in split:  # each text keeps its label
                self.assertEqual(TEXTS.index(text) % 3, label)
        self.assertEqual(len(list(result.pretraining)), len(splits[0]))

    def test_jsonl_with_class_names(self):
        path = os.path.join(self.get_temp_dir(), "reviews.jsonl")
        with open(path, "w") as f:
            for text, name in zip(TEXTS, NAMES):
                f.write(json.dumps({"body": text, "kind": name}) + "\n")
        result = data.load_texts(path, text_column="body", label_column="kind")
        self.assertEqual(result.class_names, ["first", "second", "third"])
        self._check_labelled(result)
        with self.assertRaisesRegex(ValueError, r"no column 'text'; its columns are \['body', 'kind'\]"):
            data.load_texts(path)
        with self.assertRaisesRegex(ValueError, "no column 'stars'"):
            data.load_texts(path, text_column="body", label_column="stars")

    def test_csv_with_ids_and_pairs(self):
        path = os.path.join(self.get_temp_dir(), "pairs.csv")
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["a", "b", "label"])
            for i, text in enumerate(TEXTS):
                writer.writerow([text, text.upper(), i % 3])
        result = data.load_texts(path, text_column=("a", "b"))
        self.assertTrue(result.is_pair)
        (a, b), y = next(iter(result.train))
        self.assertEqual(a.numpy().decode().upper(), b.numpy().decode())
        self.assertEqual(result.num_classes, 3)

    def test_txt_lines_and_class_folders(self):
        path = os.path.join(self.get_temp_dir(), "corpus.txt")
        with open(path, "w") as f:
            f.write("\n".join(TEXTS) + "\n\n")
        result = data.load_texts(path)
        self.assertIsNone(result.train)
        # A seeded test_fraction of the lines is held out of pre-training.
        self.assertEqual((len(list(result.pretraining)), len(list(result.heldout))), (24, 6))
        root = os.path.join(self.get_temp_dir(), "folders")
        for i, (text, name) in enumerate(zip(TEXTS, NAMES)):
            os.makedirs(os.path.join(root, name), exist_ok=True)
            with open(os.path.join(root, name, f"{i}.txt"), "w") as f:
                f.write(text)
        os.makedirs(os.path.join(root, "unlabeled"))
        with open(os.path.join(root, "unlabeled", "x.txt"), "w") as f:
            f.write("more text")
        result = data.load_texts(root)
        self.assertEqual(result.class_names, ["first", "second", "third"])
        self.assertIn(b"more text", list(result.pretraining.as_numpy_iterator()))

    def test_lists(self):
        self._check_labelled(data.load_texts((TEXTS, [i % 3 for i in range(30)])))
        a = data.load_texts((TEXTS, [i % 3 for i in range(30)]), seed=1)
        b = data.load_texts((TEXTS, [i % 3 for i in range(30)]), seed=1)
        self.assertEqual(_pairs(a.test), _pairs(b.test))

    def test_bad_sources(self):
        root = self.get_temp_dir()
        empty = os.path.join(root, "empty.txt")
        open(empty, "w").close()
        one = os.path.join(root, "one_class")
        os.makedirs(os.path.join(one, "only"))
        cases = [
            (os.path.join(root, "missing.csv"), "no file or folder"),
            (empty, "is empty"),
            (one, r"1 class folder\(s\).*at least two"),
            ((TEXTS, [0] * 30), "at least two classes"),
            ((TEXTS, [0, 1]), "2 labels for 30 texts"),
            ([], "no texts"),
            ([1, 2], "must be strings"),
            (5, "got int"),
        ]
        for source, message in cases:
            with self.assertRaisesRegex(ValueError, message, msg=str(source)[:40]):
                data.load_texts(source)
        bad_json = os.path.join(root, "bad.jsonl")
        with open(bad_json, "w") as f:
            f.write('{"text": "a"}\nnot json\n')
        with self.assertRaisesRegex(ValueError, "line 2: not JSON"):
            data.load_texts(bad_json)
