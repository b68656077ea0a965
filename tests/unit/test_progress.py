"""Long commands show progress on a terminal and nothing of it when their output goes to a file or pipe."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from streams.cli import main
from streams.site import demo_watchlist_path


def test_no_progress_bar_into_a_pipe(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watchlist", "check", str(demo_watchlist_path())]) == 0
    captured = capsys.readouterr()
    assert "khalifa-haftar (actor)" in captured.out
    assert captured.err == ""


def test_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    # stderr on a pseudo-terminal, stdout into a file: the bar goes to the terminal only.
    leader, follower = pty.openpty()
    # A terminal of 80 columns: a new pseudo-terminal has none, and a bar fits in what it has.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    out = tmp_path / "out.txt"
    with out.open("w") as stdout:
        proc = subprocess.run(
            [sys.executable, "-m", "streams.cli", "watchlist", "check", str(demo_watchlist_path())],
            stdout=stdout,
            stderr=follower,
            timeout=120,
            check=False,
        )
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.returncode == 0
    assert b"watchlist check" in shown and b"watch" in shown
    assert "\r" not in out.read_text()
