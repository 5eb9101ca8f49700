"""TFDS builder for English documentation text from the Python standard library.

The text is harvested from the interpreter that builds the data set, so it
builds offline (see `keras_pt/data/_stdlib_harvest.py` for exactly what is
read and how it is cleaned): the docstrings of the public standard modules,
their public classes, functions and methods, and the prose of the language
reference topics that `pydoc` ships. Each text is at most 512 characters,
at least 40, and unique.

Features: `text` (the docstring), `label` (its top-level module, a
`ClassLabel` over `CLASS_NAMES`; -1 in `unsupervised`), `module` (the full
dotted module name) and `name` (the documented object's qualified name).

Classes: the ten top-level modules with the most docstrings in CPython 3.11
(`CLASS_NAMES`, sorted by name). They are fixed so that label ids do not
depend on the Python version; the texts do.

Splits, fixed by a stable hash of the text (the first 8 bytes of its SHA-256
modulo 10: 0-1 test, 2 validation, 3-9 train), over the docstrings of the
class modules:

- `train` (~70%), `validation` (~10%), `test` (~20%): labelled docstrings.
- `unsupervised`: every other text, label -1: docstrings of all the other
  modules and the language reference passages. It holds no text of
  `validation` or `test`, so `train+unsupervised` is the pre-training corpus
  that never sees held-out classification text.

With CPython 3.11.7: train 1,028, validation 173, test 317, unsupervised
3,314 (of which 508 language reference passages); it builds in about a
second.

Example:

>>> import tensorflow_datasets as tfds
>>> import keras_pt.data  # registers the builder
>>> ds = tfds.load("stdlib_docs", split="train", data_dir="/tmp/tfds")  # doctest: +SKIP
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile

import tensorflow_datasets as tfds

# The ten top-level modules with the most docstrings in CPython 3.11.7
# (builtins 251, asyncio 214, logging 181, email 152, xml 149, posix 147,
# multiprocessing 110, unittest 106, http 105, importlib 103), by name.
CLASS_NAMES = (
    "asyncio",
    "builtins",
    "email",
    "http",
    "importlib",
    "logging",
    "multiprocessing",
    "posix",
    "unittest",
    "xml",
)
NUM_CLASSES = len(CLASS_NAMES)
SPLITS = ("train", "validation", "test", "unsupervised")
HARVEST_SCRIPT = os.path.join(os.path.dirname(__file__), "_stdlib_harvest.py")
HARVEST_TIMEOUT_S = 600


def split_of(text, module):
    """The split of a harvested text: a stable function of text and module."""
    if module.split(".")[0] not in CLASS_NAMES:
        return "unsupervised"
    bucket = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") % 10
    if bucket < 2:
        return "test"
    return "validation" if bucket == 2 else "train"


def harvest(python=None):
    """Runs the harvest in an isolated interpreter and returns its output.

    Args:
        python: str or None. The interpreter whose standard library to read.
            Defaults to `sys.executable`.

    Returns:
        A dict `{"python_version": str, "records": [{"module", "name",
        "text"}, ...]}`.
    """
    python = python or sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        output = os.path.join(tmp, "docs.json")
        # -I: no user site, no PYTHON* variables, no script directory on the
        # path; -S: no site-packages, so only the standard library imports.
        result = subprocess.run(
            [python, "-I", "-S", HARVEST_SCRIPT, output],
            cwd=tmp,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=HARVEST_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0 or not os.path.exists(output):
            raise RuntimeError(
                f"harvesting standard library docstrings with {python} failed "
                f"(exit code {result.returncode}): "
                f"{result.stderr.decode('utf-8', 'replace')[-2000:]}"
            )
        with open(output, encoding="utf-8") as f:
            return json.load(f)


class StdlibDocs(tfds.core.GeneratorBasedBuilder):
    """Python standard library docstrings labelled by top-level module."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release."}

    def _info(self):
        return self.dataset_info_from_configs(
            description=(
                "Docstrings of the installed Python standard library labelled "
                f"by top-level module ({NUM_CLASSES} classes: the modules with "
                "the most docstrings), plus an unlabelled split with the other "
                "modules' docstrings and the language reference topics. Split "
                "by a stable hash of the text: 70% train, 10% validation, 20% "
                "test. The texts depend on the Python version, recorded in "
                "metadata['python_version']."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "text": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=CLASS_NAMES),
                    "module": tfds.features.Text(),
                    "name": tfds.features.Text(),
                }
            ),
            supervised_keys=("text", "label"),
            homepage="https://docs.python.org/3/library/",
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # The text is installed with Python.
        harvested = harvest()
        self.info.metadata["python_version"] = harvested["python_version"]
        by_split = {split: [] for split in SPLITS}
        for record in harvested["records"]:
            by_split[split_of(record["text"], record["module"])].append(record)
        for split in ("train", "validation", "test"):
            if not by_split[split]:
                raise RuntimeError(
                    f"the {split!r} split of stdlib_docs is empty: the standard "
                    f"library of Python {harvested['python_version']} gave no "
                    f"docstrings for the modules {CLASS_NAMES}."
                )
        return {split: self._generate_examples(by_split[split]) for split in SPLITS}

    def _generate_examples(self, records):
        for record in records:
            top = record["module"].split(".")[0]
            label = CLASS_NAMES.index(top) if top in CLASS_NAMES else -1
            key = hashlib.sha256(record["text"].encode("utf-8")).hexdigest()
            yield (
                key,
                {
                    "text": record["text"],
                    "label": label,
                    "module": record["module"],
                    "name": record["name"],
                },
            )
