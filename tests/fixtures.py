"""Users' own data on disk, for the tests of the data sources and binaries:
image folders, IDX, NumPy files (scikit-learn's digits) and text files
(docstrings of the embedded stdlib_docs corpus)."""

import csv
import gzip
import json
import os
import struct

import numpy as np
from PIL import Image

from keras_pt.layers import special_tokens

# A small WordPiece vocabulary of docstring words for text-model tests.
TINY_VOCABULARY = list(special_tokens.SPECIAL_TOKENS) + (
    "the a file return value list of is module error raise if string object new name ##s ##ed . ,".split()
)


def toy_images(n_per_class=6, num_classes=3, size=8, seed=0):
    """Small uint8 images whose class is visible (a bright row per class)."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for c in range(num_classes):
        for _ in range(n_per_class):
            image = rng.integers(0, 60, (size, size)).astype(np.uint8)
            image[c] = 255
            images.append(image)
            labels.append(c)
    return np.stack(images), np.asarray(labels, np.int32)


def digits(n=None):
    """scikit-learn's 8x8 digits as uint8 images in [0, 255] and labels."""
    from sklearn.datasets import load_digits

    loaded = load_digits()
    images = (loaded.images * 255.0 / 16.0).round().astype(np.uint8)
    return images[:n], loaded.target[:n].astype(np.int32)


def write_image_folder(root, images, labels, names=None, resize_odd_to=None):
    """`root/<class name>/<i>.png`; every odd image resized to `resize_odd_to`."""
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = os.path.join(root, names[label] if names else f"class_{label}")
        os.makedirs(folder, exist_ok=True)
        picture = Image.fromarray(image)
        if resize_odd_to is not None and i % 2:
            picture = picture.resize(resize_odd_to)
        picture.save(os.path.join(folder, f"{i}.png"))
    return root


def write_idx(path, array):
    """An MNIST-format IDX file (`.gz` compressed when the name says so)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())
    return path


def write_idx_folder(root, images, labels, test_share=0.2):
    """MNIST's four IDX files (gzipped) in `root`."""
    os.makedirs(root, exist_ok=True)
    split = int(len(images) * (1 - test_share))
    write_idx(os.path.join(root, "train-images-idx3-ubyte.gz"), images[:split])
    write_idx(os.path.join(root, "train-labels-idx1-ubyte.gz"), labels[:split])
    write_idx(os.path.join(root, "t10k-images-idx3-ubyte.gz"), images[split:])
    write_idx(os.path.join(root, "t10k-labels-idx1-ubyte.gz"), labels[split:])
    return root


def write_npz(path, images, labels, test_share=0.2):
    split = int(len(images) * (1 - test_share))
    np.savez(path, x_train=images[:split], y_train=labels[:split], x_test=images[split:], y_test=labels[split:])
    return path


def docstrings(n_per_class=60, num_classes=3, min_chars=60):
    """`(text, "module_<k>")` rows of the embedded stdlib_docs corpus: up to
    `n_per_class` docstrings of at least `min_chars` from each of the
    `num_classes` modules with the most of them."""
    from keras_pt import data

    by_label = {}
    for text, label in data.load_text_dataset("stdlib_docs", "train").as_numpy_iterator():
        text = " ".join(text.decode("utf-8").split())
        if len(text) >= min_chars:
            by_label.setdefault(int(label), []).append(text)
    largest = sorted(by_label, key=lambda label: (-len(by_label[label]), label))[:num_classes]
    rows = []
    for rank, label in enumerate(largest):
        rows += [(text, f"module_{rank}") for text in by_label[label][:n_per_class]]
    return rows


def write_lines(path, texts):
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(text.replace("\n", " ") + "\n" for text in texts)
    return path


def write_csv(path, rows, text_column="text", label_column="label"):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow([text_column, label_column])
        writer.writerows(rows)
    return path


def write_jsonl(path, rows, text_column="text", label_column="label"):
    with open(path, "w", encoding="utf-8") as f:
        for text, label in rows:
            f.write(json.dumps({text_column: text, label_column: label}) + "\n")
    return path


def write_text_folders(root, rows):
    """`root/<label>/<i>.txt`, one text per file."""
    for i, (text, label) in enumerate(rows):
        folder = os.path.join(root, label)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, f"{i}.txt"), "w", encoding="utf-8") as f:
            f.write(text)
    return root
