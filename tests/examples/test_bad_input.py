"""Every binary answers bad input with the package's own message: it names
what is wrong and what to change, with exit status 1 and no traceback."""

import os

import keras
import numpy as np

from keras_pt import MiniBERT
from tests import fixtures
from tests.binaries import run_in_process
from tests.test_case import TestCase


class BadInputTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.root = cls.get_temp_dir_for_class()
        root = cls.root
        images, labels = fixtures.toy_images(n_per_class=6)
        fixtures.write_image_folder(os.path.join(root, "mixed"), images, labels, resize_odd_to=(10, 10))
        fixtures.write_image_folder(os.path.join(root, "one_class"), images[:6], labels[:6])
        rows = [(f"text number {i} about {c}", c) for c in ("a", "b") for i in range(20)]
        fixtures.write_csv(os.path.join(root, "texts.csv"), rows)
        fixtures.write_text_folders(os.path.join(root, "one_text_class"), [(t, "a") for t, _ in rows])
        fixtures.write_lines(os.path.join(root, "empty.txt"), [])
        with open(os.path.join(root, "a_file"), "w") as f:
            f.write("not a folder")
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
        model.save(os.path.join(root, "dense.keras"))
        with open(os.path.join(root, "dense.keras"), "rb") as f:
            payload = f.read()
        with open(os.path.join(root, "truncated.keras"), "wb") as f:
            f.write(payload[: len(payload) // 2])
        bert = MiniBERT(
            vocabulary_size=50, num_layers=1, hidden_dim=8, num_heads=1, intermediate_dim=16, max_sequence_length=8
        )
        bert(
            dict(
                token_ids=np.ones((1, 8), "int32"),
                padding_mask=np.ones((1, 8), "int32"),
                segment_ids=np.zeros((1, 8), "int32"),
            )
        )
        bert.save(os.path.join(root, "bert_without_preprocessor.keras"))

    @classmethod
    def get_temp_dir_for_class(cls):
        import tempfile

        return tempfile.mkdtemp()

    def test_table(self):
        root = self.root
        out = os.path.join(root, "out")
        cases = [
            # (binary, flags, what the message must say)
            ("pretrain_finetune.py", ["--dataset=no_such_dataset"], r"unknown data set 'no_such_dataset'"),
            ("pretrain_finetune.py", [f"--dataset={root}/missing/"], r"no file or folder .*missing"),
            ("pretrain_finetune.py", [f"--dataset={root}/mixed"], r"different sizes.*--image_size"),
            ("pretrain_finetune.py", [f"--dataset={root}/one_class"], r"(one|1) class.*(two|2)"),
            ("pretrain_finetune.py", ["--image_size=big"], r"--image_size takes height,width"),
            ("pretrain_finetune.py", ["--strategy=gpu"], r"unknown strategy 'gpu'"),
            ("pretrain_finetune.py", ["--pretraining=bert"], r"pretraining"),
            ("pretrain_finetune.py", [f"--model_dir={root}/a_file/run"], r"cannot write to model_dir.*--model_dir"),
            ("train_gan.py", [f"--model_dir={root}/a_file/run"], r"cannot write to model_dir"),
            ("pretrain_minigpt.py", [f"--dataset={root}/empty.txt"], r"empty|no text"),
            ("pretrain_minibert.py", ["--dataset=no_such_corpus"], r"no_such_corpus"),
            ("pretrain_minibert.py", ["--steps=-1"], r"steps must be a positive int"),
            ("pretrain_minibert.py", ["--steps=0", "--embedding_init=random"], r"steps must be a positive int"),
            ("finetune_minibert.py", [f"--dataset={root}/texts.csv", "--label_column=stars"], r"no column 'stars'"),
            ("finetune_minibert.py", [f"--dataset={root}/one_text_class"], r"class.*at least two"),
            (
                "finetune_minibert.py",
                [f"--pretrained={root}/missing.keras"],
                r"run examples/pretrain_minibert.py first",
            ),
            ("finetune_minibert.py", [f"--pretrained={root}/truncated.keras"], r"not a complete .keras file"),
            ("finetune_minibert.py", [f"--pretrained={root}/dense.keras"], r"holds a Sequential, not a MiniBERT"),
            ("finetune_minibert.py", [f"--pretrained={root}/bert_without_preprocessor.keras"], r"has no preprocessor"),
            ("distill.py", [f"--teacher={root}/dense.keras"], r"teacher must be a MiniBERTClassifier"),
            ("distill.py", [f"--teacher={root}/missing.keras"], r"run examples/finetune_minibert.py first"),
            ("train_sentence_embeddings.py", ["--objective=both"], r"objective"),
            ("train_sentence_embeddings.py", ["--num_candidates=100000"], r"lower num_candidates"),
        ]
        for binary, flags, message in cases:
            with self.subTest(binary=binary, flags=flags):
                code, _, stderr = run_in_process(binary, f"--model_dir={out}", "--verbose=0", *flags)
                self.assertEqual(code, 1, stderr[-2000:])
                self.assertNotIn("Traceback", stderr)
                self.assertRegex(stderr, message)
