"""Harvests docstrings from the installed Python standard library.

Standard library only, so it runs in an isolated interpreter
(`python -I -S _stdlib_harvest.py OUTPUT.json`): importing the standard
library then cannot touch the caller's process, and no third-party package
can shadow a standard module. The `stdlib_docs` TFDS builder calls it that
way; `harvest()` also works in-process.

What is harvested, in a deterministic order (modules sorted by name, members
sorted by name):

- every public top-level module in `sys.stdlib_module_names` (no leading
  underscore, minus `EXCLUDED_MODULES`, which have import side effects, need
  a display, or are test suites), and its public submodules (no `test` /
  `tests` packages, no `__main__` modules, no codec modules under
  `encodings`);
- for each module: its docstring; the docstrings of the public classes and
  functions it defines (`__module__` equal to the module's name); for those
  classes, the docstrings of their public methods, class and static methods
  and properties defined in the class body.

It also reads the language reference topics that `pydoc` ships
(`pydoc_data.topics`, module `pydoc_data`): each topic's prose paragraphs
(no grammar rules, no indented code), packed into passages of at most
`MAX_CHARS` characters.

Each docstring is cleaned (`inspect.cleandoc`), doctest paragraphs (first
line starting with `>>>`) are dropped, whitespace runs become one space, and
the text is cut at a word boundary to at most `MAX_CHARS` characters. Texts
shorter than `MIN_CHARS` are dropped, and a text seen twice is kept once (its
first occurrence in the order above).
"""

import importlib
import inspect
import io
import json
import pkgutil
import re
import sys
import warnings

MIN_CHARS = 40
MAX_CHARS = 512

# Modules whose import has side effects (opens a browser, prints, starts a
# GUI), that need a display, that are the interpreter's own test suites or
# IDE, or whose docstrings are generated boilerplate.
EXCLUDED_MODULES = frozenset(
    {
        "antigravity",
        "this",
        "idlelib",
        "tkinter",
        "turtle",
        "turtledemo",
        "test",
        "ensurepip",
        "lib2to3",
        "distutils",
        "msilib",
        "msvcrt",
        "winreg",
        "winsound",
        "nt",
    }
)
_SKIPPED_PARTS = frozenset({"test", "tests", "idle_test", "__main__"})
_WHITESPACE = re.compile(r"\s+")


def clean(docstring):
    """The cleaned text of a docstring, or None when it is too short."""
    if not isinstance(docstring, str):
        return None
    paragraphs = re.split(r"\n\s*\n", inspect.cleandoc(docstring))
    kept = [p for p in paragraphs if p.strip() and not p.lstrip().startswith(">>>")]
    text = _WHITESPACE.sub(" ", " ".join(kept)).strip()
    if len(text) > MAX_CHARS:
        cut = text[: MAX_CHARS + 1]
        space = cut.rfind(" ")
        text = (cut[:space] if space > MIN_CHARS else cut[:MAX_CHARS]).rstrip()
    return text if len(text) >= MIN_CHARS else None


def _import(name):
    """Imports a module quietly; None when it fails."""
    stdout, stderr = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = io.StringIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(name)
    except BaseException:  # noqa: BLE001  (SystemExit, ImportError, OSError ...)
        return None
    finally:
        sys.stdout, sys.stderr = stdout, stderr


def module_names():
    """Sorted names of the public standard modules and submodules to read."""
    names = set()
    for top in sorted(sys.stdlib_module_names):
        if top.startswith("_") or top in EXCLUDED_MODULES:
            continue
        module = _import(top)
        if module is None:
            continue
        names.add(top)
        path = getattr(module, "__path__", None)
        if path is None or top == "encodings":
            continue
        for info in pkgutil.walk_packages(path, prefix=top + ".", onerror=lambda _: None):
            parts = info.name.split(".")
            if any(p.startswith("_") or p in _SKIPPED_PARTS for p in parts[1:]):
                continue
            names.add(info.name)
    return sorted(names)


def _members(module):
    """(qualified name, docstring) of a module and what it defines, in order."""
    yield module.__name__, module.__doc__
    for name, obj in sorted(vars(module).items()):
        if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
            continue
        if not (inspect.isclass(obj) or inspect.isroutine(obj)):
            continue
        qualified = f"{module.__name__}.{name}"
        yield qualified, obj.__doc__
        if not inspect.isclass(obj):
            continue
        for attr, member in sorted(vars(obj).items()):
            if attr.startswith("_"):
                continue
            if isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            if inspect.isroutine(member) or isinstance(member, property):
                yield f"{qualified}.{attr}", member.__doc__


def harvest():
    """Returns `[{"module", "name", "text"}, ...]` in a deterministic order."""
    records, seen = [], set()
    for module_name in module_names():
        module = _import(module_name)
        if module is None:
            continue
        for name, docstring in _members(module):
            text = clean(docstring)
            if text is None or text in seen:
                continue
            seen.add(text)
            records.append({"module": module_name, "name": name, "text": text})
    for record in reference_topics():
        if record["text"] not in seen:
            seen.add(record["text"])
            records.append(record)
    return records


def _prose(paragraph):
    lines = paragraph.splitlines()
    if not lines or lines[0].startswith((" ", "\t", ">>>")) or "::=" in paragraph:
        return None
    if set(lines[-1].strip()) <= set("*=-^~"):  # a heading underline
        return None
    return _WHITESPACE.sub(" ", paragraph).strip()


def reference_topics():
    """`[{"module", "name", "text"}, ...]`: passages of pydoc's topics."""
    module = _import("pydoc_data.topics")
    if module is None:
        return []
    records = []
    for topic, body in sorted(module.topics.items()):
        passages, current = [], ""
        for paragraph in re.split(r"\n\s*\n", body):
            text = _prose(paragraph)
            if text is None:
                continue
            if current and len(current) + 1 + len(text) > MAX_CHARS:
                passages.append(current)
                current = ""
            current = f"{current} {text}".strip()
        passages.append(current)
        for index, passage in enumerate(passages):
            text = clean(passage)
            if text is not None:
                records.append({"module": "pydoc_data", "name": f"pydoc_data.topics.{topic}.{index}", "text": text})
    return records


def main(argv):
    if len(argv) != 2:
        raise SystemExit("usage: python -I -S _stdlib_harvest.py OUTPUT.json")
    records = harvest()
    payload = {"python_version": sys.version.split()[0], "records": records}
    with open(argv[1], "w", encoding="utf-8") as f:
        json.dump(payload, f)


if __name__ == "__main__":
    main(sys.argv)
