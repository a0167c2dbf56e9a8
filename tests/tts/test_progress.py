"""A build's progress: a bar on a terminal; on a file or pipe (CI, ``nohup``, ``| tee``) a few plain lines with no
carriage returns, bounded whatever the build's size; and the ``python -m kwslab.tts`` log as a user would keep it."""

from __future__ import annotations

import io
from pathlib import Path

from kwslab.tts.__main__ import main
from kwslab.tts.progress import Progress, is_terminal


class Clock:
    """A fake monotonic clock that moves only when told."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(total: int, step: float, stream: io.StringIO, stop_at: int | None = None, fail_every: int = 0) -> list[str]:
    clock = Clock()
    progress = Progress(total, "data/x", stream=stream, clock=clock)
    for i in range(total if stop_at is None else stop_at):
        clock.now += step
        progress.update(ok=not (fail_every and i % fail_every == 0))
    progress.close()
    progress.close()  # idempotent: the builder closes in a finally
    return stream.getvalue().splitlines()


def test_plain_lines_on_a_file_a_start_a_line_per_tenth_and_a_summary():
    stream = io.StringIO()
    lines = run(1000, 0.01, stream, fail_every=250)
    assert "\r" not in stream.getvalue() and len(lines) == 11, lines
    assert lines[0] == "data/x: 1000 clips to make"
    assert lines[1] == "data/x: 100/1000 clips (10%), 1 s, 100.0 clips/s, 1 failed"
    assert lines[9].startswith("data/x: 900/1000 clips (90%)")
    assert lines[-1] == "data/x: 1000/1000 clips in 10.0 s (100.0 clips/s), 4 failed"


def test_a_slow_build_still_writes_a_line_a_minute():
    lines = run(100, 30.0, io.StringIO())  # 50 min; a tenth every 5 min
    assert len(lines) == 1 + 49 + 1  # the start, every second clip (a minute apart), the end
    assert lines[1] == "data/x: 2/100 clips (2%), 60 s, 0.0 clips/s"


def test_small_and_stopped_builds():
    assert run(3, 0.5, io.StringIO()) == ["data/x: 3 clips to make", "data/x: 1/3 clips (33%), 0 s, 2.0 clips/s",
                                          "data/x: 2/3 clips (66%), 1 s, 2.0 clips/s",
                                          "data/x: 3/3 clips in 1.5 s (2.0 clips/s)"]
    assert run(10, 1.0, io.StringIO(), stop_at=4)[-1] == "data/x: stopped after 4/10 clips in 4.0 s (1.0 clips/s)"
    assert run(0, 1.0, io.StringIO()) == []  # nothing to make: nothing said
    quiet = io.StringIO()
    progress = Progress(10, "data/x", enabled=False, stream=quiet)
    progress.update()
    progress.close()
    assert quiet.getvalue() == ""


def test_a_bar_on_a_terminal():
    stream = Terminal()
    assert is_terminal(stream) and not is_terminal(io.StringIO())
    run(50, 0.01, stream)
    text = stream.getvalue()
    assert "\r" in text and "50/50" in text and "clips to make" not in text


def test_the_build_command_logs_a_few_lines_when_stderr_is_not_a_terminal(tmp_path: Path, capsys):
    out = tmp_path / "ds"
    args = ["--keywords", "yes", "no", "--voices", "en-us+f3", "en-gb-scotland+m3", "--per-voice", "10",
            "--concurrency", "1", "--out", str(out)]
    assert main(args) == 0
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and 3 <= len(lines) <= 11, err
    assert all(line.startswith(f"{out}: ") for line in lines), err
    assert lines[0].endswith(": 40 clips to make") and " 40/40 clips in " in lines[-1]
    assert main(args) == 0  # a re-run with nothing to make says nothing on stderr
    assert capsys.readouterr().err == ""
