"""Helpers to run test scripts in their own processes (one strategy each)."""

import json
import os
import socket
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def free_ports(count):
    """`count` TCP ports on 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports, index):
    """TF_CONFIG of worker `index` in a cluster of local workers."""
    return json.dumps(
        {
            "cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
            "task": {"type": "worker", "index": index},
        }
    )


def script_env(**extra):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def start(args, log_path, **env):
    """Starts `python args...` in the repository root, output to `log_path`."""
    log = open(log_path, "w")
    return subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=script_env(**env), stdout=log, stderr=subprocess.STDOUT
    )


def wait_all(processes, timeout=300):
    """Waits for every process; kills the rest at the deadline. Returns codes."""
    deadline = time.time() + timeout
    codes = []
    for process in processes:
        try:
            codes.append(process.wait(timeout=max(1, deadline - time.time())))
        except subprocess.TimeoutExpired:
            process.kill()
            codes.append(process.wait())
    return codes


def tail(path, chars=3000):
    with open(path) as f:
        return f.read()[-chars:]
