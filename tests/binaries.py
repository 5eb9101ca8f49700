"""Runs the example binaries' `main` in the test process, as their `__main__` would."""

import contextlib
import importlib.util
import io
import os
import sys
import warnings

from absl import flags

from keras_pt.recipes import flags as recipe_flags

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def _print_warning(message, category, filename, lineno, file=None, line=None):
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_in_process(name, *argv):
    """Runs `examples/<name>`'s `main` in this process with `argv` flags, as
    its `__main__` would (flag parsing, messages for bad input).

    Returns `(exit_code, stdout, stderr)`; warnings are written to stderr,
    as the interpreter would. The example's flags are defined for the call
    and removed after it, so binaries with flags of the same names run one
    after another.
    """
    before = set(flags.FLAGS)
    spec = importlib.util.spec_from_file_location(f"example_{name[:-3]}", os.path.join(ROOT, "examples", name))
    module = importlib.util.module_from_spec(spec)
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    try:
        spec.loader.exec_module(module)
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = _print_warning
            try:
                flags.FLAGS([name, *argv])
                recipe_flags.with_messages(module.main)([name])
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else 1
            except flags.Error as error:
                print(f"FATAL Flags parsing error: {error}", file=sys.stderr)
                code = 1
    finally:
        for flag in set(flags.FLAGS) - before:
            delattr(flags.FLAGS, flag)
        flags.FLAGS.unparse_flags()
    return code, stdout.getvalue(), stderr.getvalue()
