"""Progress output: plain stamped lines with milestones off a terminal, a live line with the
time left on one, nothing when quiet."""

from __future__ import annotations

import io

import pytest

from training import progress as progress_module
from training.progress import Progress, Stage, duration, stage_of


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(progress_module.time, "perf_counter", fake)
    return fake


def test_durations_read_as_a_person_says_them():
    assert [duration(s) for s in (0.4, 42, 185, 3720, -3)] == [
        "0 s",
        "42 s",
        "3 min 05 s",
        "1 h 02 min",
        "0 s",
    ]


def test_plain_lines_report_milestones_of_a_long_stage_with_the_time_left(clock):
    out = io.StringIO()
    job = Progress(out, mode="plain")
    with job.stage("churn holdout", total=8) as stage:
        clock.now += 10
        stage.advance(2)  # 25 % after 10 s: 30 s left
        clock.now += 10
        stage.advance(4)  # 75 % after 20 s: two milestones at once, the last one said
        clock.now += 5
        stage.advance(2)
    job("done")
    assert out.getvalue().splitlines() == [
        "[  10.0s] churn holdout: 25 %, about 30 s left",
        "[  20.0s] churn holdout: 75 %, about 7 s left",
        "done",
    ]


def test_a_short_stage_says_nothing_of_its_own(clock):
    out = io.StringIO()
    job = Progress(out, mode="plain")
    with job.stage("summary", total=4) as stage:
        clock.now += 1
        stage.advance(2)  # 50 % after 1 s: under QUIET_SECONDS
        clock.now += 10
        stage.advance(1)  # 75 % after 11 s: milestones already passed early are not repeated
    assert out.getvalue() == "[  11.0s] summary: 75 %, about 4 s left\n"


def test_the_live_line_is_redrawn_under_the_job_lines(clock):
    out = io.StringIO()
    job = Progress(out, mode="live", interval=3600)  # no redraws from the ticker thread
    with job.stage("segmentation", total=4) as stage:
        clock.now += 6
        stage.advance(1)
        assert stage.line() == (
            "segmentation [######------------------]  25 %  6 s, about 18 s left"
        )
        job("fitted 4 clusters")
    job.close()
    text = out.getvalue()
    assert "fitted 4 clusters\n" in text
    assert text.startswith("fitted 4 clusters\nsegmentation [")  # redrawn after the line
    assert text.endswith("\r\x1b[K")  # cleared when the stage ends


def test_a_stage_without_total_shows_its_elapsed_time(clock):
    stage = Stage(None, "loading", None)
    clock.now += 75
    assert stage.line() == "loading ... 1 min 15 s"
    assert stage.left() is None


def test_quiet_writes_nothing(clock):
    out = io.StringIO()
    job = Progress(out, mode="quiet")
    with job.stage("x", total=2) as stage:
        clock.now += 100
        stage.advance(1)
    job("a line")
    assert out.getvalue() == ""


def test_a_plain_callable_gets_a_silent_stage():
    lines: list[str] = []
    with stage_of(lines.append, "x", total=3) as stage:
        stage.advance(3)
    assert stage.fraction == 1.0 and lines == []


def test_auto_mode_follows_the_stream():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert Progress(Terminal()).mode == "live"
    assert Progress(io.StringIO()).mode == "plain"
    with pytest.raises(ValueError, match="use live, plain or quiet"):
        Progress(io.StringIO(), mode="loud")
