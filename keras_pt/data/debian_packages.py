"""TFDS builder for Debian package descriptions labelled by archive section.

A second embedded text corpus, of a different kind than `stdlib_docs`'
docstrings: the one-line descriptions of the packages in the Debian archive
(e.g. "command line tool for transferring data with URL syntax", section
`web`), short noun phrases of about 6-7 words. They are read from the
package index the machine already has, so the data set builds offline:
`apt-cache dumpavail` (the records of every package in the downloaded
`/var/lib/apt/lists` indexes and of the installed ones); where `apt-cache`
is missing, the installed packages of `/var/lib/dpkg/status`, which are
usually too few for the labelled splits (the builder then says so). On
Debian 12 (bookworm, main, amd64) the index lists 63,436 packages.

Features: `text` (the description), `label` (the package's section, a
`ClassLabel` over `CLASS_NAMES`; -1 in `unsupervised`), `package`, `source`
(the source package), `section` (the archive section, without a
`contrib/` or `non-free/` prefix), `tags` (the package's debtags, the
`Tag:` field: `facet::value` terms such as `use::editing`, placeholders
like `role::TODO` dropped; empty for untagged packages, about half) and
`tag_text` (the tags as words, see `tag_text`: "editing text" for
`use::editing, works-with::text`; empty without tags). A description and
its `tag_text` say what a package is in two vocabularies, the pairs of
`keras_pt.data.load_sentence_pairs("debian_packages")`.

Cleaning: whitespace runs become one space; descriptions shorter than
`MIN_CHARS` characters are dropped, and a description seen twice (ignoring
case) is kept once, for the first package in name order. The packages of the
project's held-out evaluation corpora (`EXCLUDED_PACKAGES`) are left out.

Classes: the eighteen application sections with at least ~190 distinct
descriptions (`CLASS_NAMES`, sorted by name). The sections whose
descriptions are mostly boilerplate or name a programming language or
desktop (`libs`, `libdevel`, `doc`, `debug`, `python`, `perl`, `rust`,
`kde`, `misc`, ...) are unlabelled text.

Splits, fixed by a stable hash of the *source* package (the first 8 bytes
of the SHA-256 of its name modulo 10: 0-1 test, 2 validation, 3-9 train),
so that the sibling packages of one source (`foo`, `foo-data`, `foo-doc`,
whose descriptions differ by a suffix) never straddle two splits:

- `train` (~70%), `validation` (~10%), `test` (~20%): descriptions of
  packages in the class sections.
- `unsupervised`: the descriptions of packages in every other section whose
  source hashes to `train`. The other sections' packages of validation and
  test sources are left out, so `train+unsupervised`, the pre-training
  corpus, holds no text of a held-out source.

On Debian 12 (59,775 distinct descriptions): train 11,720, validation
1,588, test 3,368 (18 classes), unsupervised 30,416; it builds in a few
seconds.

Example:

>>> import tensorflow_datasets as tfds
>>> import keras_pt.data  # registers the builder
>>> ds = tfds.load("debian_packages", split="train", data_dir="/tmp/tfds")  # doctest: +SKIP
"""

import hashlib
import os
import re
import shutil
import subprocess

import tensorflow_datasets as tfds

# Application sections of the Debian archive with at least ~190 distinct
# descriptions in bookworm main, by name.
CLASS_NAMES = (
    "admin",
    "database",
    "devel",
    "editors",
    "electronics",
    "games",
    "graphics",
    "interpreters",
    "mail",
    "math",
    "net",
    "science",
    "sound",
    "text",
    "utils",
    "video",
    "web",
    "x11",
)
NUM_CLASSES = len(CLASS_NAMES)
SPLITS = ("train", "validation", "test", "unsupervised")
MIN_CHARS = 12
DPKG_STATUS = "/var/lib/dpkg/status"
APT_TIMEOUT_S = 300
# Packages of the project's held-out evaluation corpora: never read.
EXCLUDED_PACKAGES = re.compile(r"^(fortune|fortunes|wordnet|dataset-fashion-mnist)|wordnet")
_WHITESPACE = re.compile(r"\s+")
# Fields whose continuation lines continue the value (the long description's
# lines are not part of `Description`'s value).
FOLDED_FIELDS = ("Tag",)
# A debtags placeholder for a value not chosen yet (`role::TODO`, `devel::lang:TODO`).
_PLACEHOLDER_TAG = re.compile(r"(^|:)TODO$", re.IGNORECASE)
_TAG_WORD_SEPARATORS = re.compile(r"[:_\-\s]+")


def bucket_split(source):
    """`"train"`, `"validation"` or `"test"`: a stable function of the source."""
    bucket = int.from_bytes(hashlib.sha256(source.encode("utf-8")).digest()[:8], "big") % 10
    if bucket < 2:
        return "test"
    return "validation" if bucket == 2 else "train"


def split_of(section, source):
    """The split of a package's description, or None when it is left out."""
    split = bucket_split(source)
    if section in CLASS_NAMES:
        return split
    return "unsupervised" if split == "train" else None


def parse_records(lines):
    """`[{field: value}]` of a Debian control file.

    A field's value is its first line; the continuation lines (those that
    start with whitespace) of the `FOLDED_FIELDS` (`Tag`) are joined to it
    with one space, those of other fields (the long description) dropped.
    """
    records, current, key = [], {}, None
    for line in lines:
        line = line.rstrip("\r\n")
        if not line.strip():
            if current:
                records.append(current)
                current = {}
            key = None
            continue
        if line[0] in " \t":  # a continuation line
            if key in FOLDED_FIELDS:
                current[key] = f"{current[key]} {line.strip()}".strip()
            continue
        key, _, value = line.partition(":")
        current[key] = value.strip()
    if current:
        records.append(current)
    return records


def parse_tags(field):
    """The debtags terms of a `Tag:` field value, placeholders dropped.

    Args:
        field: str. The value, e.g. `"role::program, use::editing"`.

    Returns:
        list of str: the `facet::value` terms in field order, without
        duplicates and without placeholders (`role::TODO`,
        `devel::lang:TODO`).
    """
    tags = []
    for term in field.split(","):
        term = term.strip()
        if term and "::" in term and not _PLACEHOLDER_TAG.search(term) and term not in tags:
            tags.append(term)
    return tags


def tag_text(tags):
    """Debtags as words: each term's value, its `:`, `-` and `_` as spaces.

    The facet names (`use::`, `works-with::`) are left out; a word is kept
    once, where it first appears, so the text keeps the tags' order.

    Args:
        tags: list of str. `facet::value` terms (see `parse_tags`).

    Returns:
        str, e.g. `"editing text"` for `["use::editing", "works-with::text"]`
        and `"lang c++ shared lib"` for `["devel::lang:c++",
        "role::shared-lib"]`; empty for no tags.

    Example:

    >>> tag_text(["interface::x11", "role::program", "x11::application"])
    'x11 program application'
    """
    words = []
    for tag in tags:
        _, _, value = tag.partition("::")
        for word in _TAG_WORD_SEPARATORS.split(value):
            if word and word not in words:
                words.append(word)
    return " ".join(words)


def read_index():
    """The package records available on this machine, and where they came from.

    Returns:
        `(records, origin)`: the parsed records of `apt-cache dumpavail`
        (origin `"apt-cache dumpavail"`), or of `/var/lib/dpkg/status` where
        `apt-cache` is missing or fails.
    """
    apt_cache = shutil.which("apt-cache")
    if apt_cache:
        result = subprocess.run(
            [apt_cache, "dumpavail"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=APT_TIMEOUT_S,
            env={**os.environ, "LC_ALL": "C"},
            check=False,
        )
        if result.returncode == 0 and result.stdout.strip():
            lines = result.stdout.decode("utf-8", "replace").splitlines()
            return parse_records(lines), "apt-cache dumpavail"
    if os.path.exists(DPKG_STATUS):
        with open(DPKG_STATUS, encoding="utf-8", errors="replace") as f:
            return parse_records(f), DPKG_STATUS
    return [], None


def harvest(records=None):
    """The cleaned, deduplicated descriptions in package-name order.

    Args:
        records: list of dicts or None. Parsed control records. Defaults to
            `read_index()`'s.

    Returns:
        A dict `{"origin": str or None, "records": [{"package", "source",
        "section", "text", "tags", "tag_text"}, ...]}`.
    """
    origin = "given"
    if records is None:
        records, origin = read_index()
    packages = {}
    for record in records:
        name = record.get("Package")
        if name and name not in packages:
            packages[name] = record
    harvested, seen = [], set()
    for name in sorted(packages):
        record = packages[name]
        if EXCLUDED_PACKAGES.search(name):
            continue
        text = _WHITESPACE.sub(" ", record.get("Description", "")).strip()
        if len(text) < MIN_CHARS or text.casefold() in seen:
            continue
        seen.add(text.casefold())
        source = (record.get("Source") or name).split()[0]
        section = record.get("Section", "").split("/")[-1]
        tags = parse_tags(record.get("Tag", ""))
        harvested.append(
            {
                "package": name,
                "source": source,
                "section": section,
                "text": text,
                "tags": tags,
                "tag_text": tag_text(tags),
            }
        )
    return {"origin": origin, "records": harvested}


class DebianPackages(tfds.core.GeneratorBasedBuilder):
    """Debian package descriptions labelled by archive section."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "1.1.0": "The packages' debtags: `tags` and `tag_text`.",
    }

    def _info(self):
        return self.dataset_info_from_configs(
            description=(
                "One-line descriptions of the Debian packages in the machine's "
                f"package index, labelled by archive section ({NUM_CLASSES} "
                "application sections), plus an unlabelled split with the other "
                "sections' descriptions. Split by a stable hash of the source "
                "package: 70% train, 10% validation, 20% test. The texts depend "
                "on the package index, recorded in metadata['origin'] and "
                "metadata['num_packages']. `tags` holds the package's debtags "
                "(`facet::value`, empty when untagged), `tag_text` their values "
                "as words."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "text": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=CLASS_NAMES),
                    "package": tfds.features.Text(),
                    "source": tfds.features.Text(),
                    "section": tfds.features.Text(),
                    "tags": tfds.features.Sequence(tfds.features.Text()),
                    "tag_text": tfds.features.Text(),
                }
            ),
            supervised_keys=("text", "label"),
            homepage="https://packages.debian.org/stable/",
            metadata=tfds.core.MetadataDict(),
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # The package index is on the machine.
        harvested = harvest()
        self.info.metadata["origin"] = harvested["origin"]
        self.info.metadata["num_packages"] = len(harvested["records"])
        by_split = {split: [] for split in SPLITS}
        for record in harvested["records"]:
            split = split_of(record["section"], record["source"])
            if split is not None:
                by_split[split].append(record)
        for split in ("train", "validation", "test"):
            labels = {r["section"] for r in by_split[split]}
            if len(labels) < NUM_CLASSES:
                raise RuntimeError(
                    f"the {split!r} split of debian_packages lacks the sections "
                    f"{sorted(set(CLASS_NAMES) - labels)}: the package index "
                    f"({harvested['origin']}, {len(harvested['records'])} "
                    "descriptions) is too small. Run `apt-get update` once, or "
                    "use a machine whose image keeps /var/lib/apt/lists."
                )
        return {split: self._generate_examples(by_split[split]) for split in SPLITS}

    def _generate_examples(self, records):
        for record in records:
            section = record["section"]
            yield (
                record["package"],
                {
                    "text": record["text"],
                    "label": CLASS_NAMES.index(section) if section in CLASS_NAMES else -1,
                    "package": record["package"],
                    "source": record["source"],
                    "section": section,
                    "tags": record["tags"],
                    "tag_text": record["tag_text"],
                },
            )
