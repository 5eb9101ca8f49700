"""The MiniGPT and sentence-embedding example binaries run end to end."""

import os
import string
import uuid
import pytest

import tensorflow as tf

from keras_pt.layers import special_tokens
from tests.binaries import run_in_process
from tests.test_case import TestCase

TINY = (
    "--strategy=default",
    "--verbose=0",
    "--hidden_dim=64",
    "--num_layers=1",
    "--sequence_length=24",
    "--batch_size=8",
    "--steps=3",
)


def character_vocabulary(directory):
    """A vocabulary file of single characters (words spelt letter by letter)."""
    characters = string.ascii_lowercase + string.digits + string.punctuation
    tokens = list(special_tokens.SPECIAL_TOKENS) + list(characters) + ["##" + c for c in characters]
    path = os.path.join(directory, "vocabulary.txt")
    with open(path, "w") as f:
        f.write("\n".join(tokens) + "\n")
    return path


@pytest.mark.slow
class TextExamplesTest(TestCase):
    def test_pretrain_minigpt(self):
        model_dir = f"ram://minigpt-{uuid.uuid4().hex}"  # any tf.io.gfile path
        code, stdout, stderr = run_in_process(
            "pretrain_minigpt.py",
            f"--model_dir={model_dir}",
            "--prompts=Return the",
            f"--vocabulary={character_vocabulary(self.get_temp_dir())}",
            *TINY,
        )
        self.assertEqual(code, 0, stderr[-3000:])
        self.assertRegex(stdout, r"MiniGPT after 3 steps +\d+\.\d")
        self.assertRegex(stdout, r"unigram \(add-one\) +\d+\.\d")
        self.assertIn("greedy:  return the", stdout)
        self.assertTrue(tf.io.gfile.exists(f"{model_dir}/mini_gpt.keras"))

    def test_train_sentence_embeddings(self):
        model_dir = f"ram://sentences-{uuid.uuid4().hex}"
        code, stdout, stderr = run_in_process(
            "train_sentence_embeddings.py",
            f"--model_dir={model_dir}",
            "--num_candidates=8",
            "--objective=unsupervised",
            f"--vocabulary={character_vocabulary(self.get_temp_dir())}",
            *TINY,
        )
        self.assertEqual(code, 0, stderr[-3000:])
        self.assertRegex(stdout, r"unsupervised embeddings +\d\.\d{3}")
        self.assertRegex(stdout, r"chance \(1/8\) +0\.125")
        self.assertRegex(stdout, r"TF-IDF cosine +\d\.\d{3}")
        self.assertTrue(tf.io.gfile.exists(f"{model_dir}/sentence_encoder.keras"))
