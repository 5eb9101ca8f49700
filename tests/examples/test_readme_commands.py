"""The README's "Use your own data" commands, word for word, on small files
of each kind: class folders, IDX and .npz images; .txt, CSV, JSONL and
class-folder texts."""

import os
import re
import shlex
import shutil
import tempfile

import pytest

from tests import fixtures
from tests.binaries import ROOT, run_in_process
from tests.test_case import TestCase


def readme_commands():
    """The command lines of the bash block in the README's "Use your own data"."""
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme[readme.index("## Use your own data") :]
    section = section[: section.index("\n## ", 1)]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if line.startswith("python ")]


def write_fixtures(root):
    """The files the README's commands name, in `root`."""
    images, labels = fixtures.digits()
    fixtures.write_image_folder(os.path.join(root, "my_images"), images[:400], labels[:400], resize_odd_to=(10, 10))
    fixtures.write_idx_folder(os.path.join(root, "mnist_idx"), images[:600], labels[:600])
    fixtures.write_npz(os.path.join(root, "digits.npz"), images[:600], labels[:600])
    rows = fixtures.docstrings(n_per_class=60, num_classes=3)
    fixtures.write_lines(os.path.join(root, "corpus.txt"), [text for text, _ in fixtures.docstrings(100, 10, 30)])
    fixtures.write_csv(os.path.join(root, "reviews.csv"), rows, "review", "stars")
    # Texts of several sentences: first sentence -> remainder pairs.
    several = [(t, label) for t, label in fixtures.docstrings(100, 10) if re.search(r"\.\s+\w", t[20:])]
    fixtures.write_jsonl(os.path.join(root, "notes.jsonl"), several)
    fixtures.write_text_folders(os.path.join(root, "my_texts"), rows)


# The commands in three groups that run side by side (each group's commands
# in README order: the fine-tuning and distillation commands read the
# pre-trained and fine-tuned models of the commands before them).
GROUPS = {
    "images": ("pretrain_finetune", "train_gan"),
    "minibert": ("pretrain_minibert", "finetune_minibert", "distill"),
    "small_text_models": ("pretrain_minigpt", "train_sentence_embeddings"),
}


def binary(line):
    return re.search(r"examples/(\w+)\.py", line).group(1)


class ReadmeCommandsCase(TestCase):
    """Runs the README's commands of one group in a folder of fixtures."""

    group = None

    def run_group(self):
        root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, root, ignore_errors=True)
        write_fixtures(root)
        lines = [line for line in readme_commands() if binary(line) in GROUPS[self.group]]
        self.assertTrue(lines)
        # The binaries run in this process (one TensorFlow start-up for the
        # group), from the folder of fixtures as a user's shell would.
        self.addCleanup(os.chdir, os.getcwd())
        os.chdir(root)
        for line in lines:
            with self.subTest(command=line):
                argv = shlex.split(line)
                self.assertEqual(argv[:1], ["python"])
                self.assertEqual(os.path.dirname(argv[1]), "examples")
                code, stdout, stderr = run_in_process(os.path.basename(argv[1]), *argv[2:])
                self.assertEqual(code, 0, f"{line}\n{stderr[-3000:]}")
                if "no gradient steps" not in stdout:  # pre-training of 0 steps measures nothing
                    self.assertRegex(stdout, r"\d\.\d{3}")  # a table of figures
                model_dir = re.search(r"--model_dir=(\S+)", line).group(1)
                self.assertTrue(os.path.exists(os.path.join(root, model_dir, "settings.json")))


class ReadmeCommandListTest(TestCase):
    def test_every_source_kind_and_binary_has_a_command(self):
        lines = readme_commands()
        text = " ".join(lines)
        for source in ("my_images/", "mnist_idx/", ".npz", ".txt", ".csv", ".jsonl", "my_texts/"):
            self.assertIn(source, text)
        for name in (
            "pretrain_finetune",
            "train_gan",
            "pretrain_minibert",
            "pretrain_minigpt",
            "finetune_minibert",
            "distill",
            "train_sentence_embeddings",
        ):
            self.assertIn(f"examples/{name}.py", text)
        grouped = {name for names in GROUPS.values() for name in names}
        self.assertEqual({binary(line) for line in lines} - grouped, set(), "a command no group runs")


@pytest.mark.slow
class ImageCommandsTest(ReadmeCommandsCase):
    group = "images"

    def test_readme_commands_word_for_word(self):
        self.run_group()


@pytest.mark.slow
class MiniBERTCommandsTest(ReadmeCommandsCase):
    group = "minibert"

    def test_readme_commands_word_for_word(self):
        self.run_group()


@pytest.mark.slow
class SmallTextModelCommandsTest(ReadmeCommandsCase):
    group = "small_text_models"

    def test_readme_commands_word_for_word(self):
        self.run_group()
