"""The wirewatch command itself, as a user runs it: demo, run --once (and a restart of it), match."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest

from schemas import load_schema
from streams.cli import main
from streams.site import Page, SiteServer, demo_watchlist_path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "data" / "golden"


def demo_run(feeds: Path, tmp_path: Path) -> list[str]:
    """The arguments of a run over the demo's watchlist printing JSON lines, with its own data dir."""
    return [
        "--format",
        "jsonl",
        "--feeds",
        str(feeds),
        "--watchlist",
        str(demo_watchlist_path()),
        "--data-dir",
        str(tmp_path / "data"),
    ]


async def spawn(*args: str, env: dict[str, str] | None = None) -> asyncio.subprocess.Process:
    """Start the CLI in a child process; this loop keeps serving the loopback site meanwhile."""
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "streams.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env=env,
    )


async def wirewatch(
    *args: str, timeout: float = 180.0, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """Run the CLI to its end."""
    proc = await spawn(*args, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.integration
@pytest.mark.parametrize("broker", ["its-own-embedded", "apache-kafka"])
async def test_run_once_prints_jsonl_and_a_restart_never_realerts(
    demo_site: SiteServer, tmp_path: Path, broker: str, request: pytest.FixtureRequest
) -> None:
    env = None
    extra: list[str] = []
    if broker == "apache-kafka":
        # The topics outlive each run here, so the runs share a consumer group of their own.
        extra = ["--broker", request.getfixturevalue("apache_kafka")]
        tag = tmp_path.name[-12:].replace("_", "-").lower()
        env = {**os.environ, "WIREWATCH_APP_ID": f"restart-{tag}", "WIREWATCH_TOPIC_PREFIX": f"r{tag}."}
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(f"# the loopback site\n{demo_site.feed_url}\n")
    args = ["run", "--once", *demo_run(feeds, tmp_path), *extra]

    code, out, err = await wirewatch(*args, env=env)
    assert code == 0, err
    alerts = [json.loads(line) for line in out.splitlines()]
    schema = load_schema("wirewatch.alerts")
    for alert in alerts:
        jsonschema.validate(alert, schema)
    slugs = {a["url"].rsplit("/", 1)[1].removesuffix(".html").removesuffix("-syndicated") for a in alerts}
    assert slugs == {"lna-pushes-toward-sirte", "jufra-airbase-jets", "sarraj-ankara-talks"}
    assert len(alerts) == 3

    # The embedded broker is gone with the process; the data directory remembers what was seen.
    code, out, err = await wirewatch(*args, env=env)
    assert code == 0, err
    assert out == ""
    assert "nothing new" in err

    if broker == "apache-kafka":
        # A worker elsewhere, with an empty data directory: its poller publishes every item again, and the
        # tables restored from their changelog topics stop each one before it is fetched or alerted.
        fresh = [*args[: args.index("--data-dir") + 1], str(tmp_path / "elsewhere"), *extra]
        code, out, err = await wirewatch(*fresh, env=env)
        assert code == 0, err
        assert out == ""
        assert "8 new item(s): 6 already fetched, 2 deadletter" in err, err  # the 404 and the PDF again

    # A new story published after the restart alerts, and only it.
    demo_site.site.pages.append(
        Page(
            slug="misrata-port",
            title="Cargo ship unloads at Misrata as Sirte talks drag on",
            date="2020-06-12T08:00:00Z",
            byline="By Staff",
            body=(
                "A cargo ship carrying flour and medical supplies unloaded at Misrata port on Friday, officials said, "
                "while negotiators continued to argue over the future of Sirte and its airport.",
                "Port workers said the ship had waited three days at anchor because of a dispute over customs fees. "
                "The health ministry said the supplies would be sent to hospitals in the west of the country.",
            ),
        )
    )
    code, out, err = await wirewatch(*args, env=env)
    assert code == 0, err
    (alert,) = [json.loads(line) for line in out.splitlines()]
    assert alert["url"].endswith("/news/misrata-port.html")
    assert alert["watches"] == ["sirte"]

    # Feed health, from the data directory or from the broker's health topic.
    where = extra or ["--data-dir", str(tmp_path / "data")]
    code, out, err = await wirewatch("feeds", "--json", *where, env=env)
    assert code == 0, err
    (health,) = [json.loads(line) for line in out.splitlines()]
    jsonschema.validate(health, load_schema("wirewatch.feeds.health"))
    assert health["feed_url"] == demo_site.feed_url
    assert (health["consecutive_failures"], health["items_seen"], health["alerted"]) == (0, 9, None)
    code, out, err = await wirewatch("feeds", *where, env=env)
    assert code == 0, err
    assert out.splitlines()[0].split()[:3] == ["STATUS", "FEED", "LAST"]
    assert out.splitlines()[1].startswith("ok ")


@pytest.mark.integration
async def test_run_once_over_feeds_that_all_failed_says_why_and_exits_non_zero(tmp_path: Path) -> None:
    """A loopback feed without allow_networks is refused: said, with the setting to change, and exit 1."""
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("http://127.0.0.1:9/feed.xml\n")
    env = {k: v for k, v in os.environ.items() if k != "WIREWATCH_ALLOW_NETWORKS"}
    args = ["run", "--once", "--feeds", str(feeds), "--watchlist", str(demo_watchlist_path())]
    code, _, err = await wirewatch(*args, "--data-dir", str(tmp_path / "data"), env=env)
    assert code == 1, err
    assert "1 of 1 feed(s) failed" in err and "http://127.0.0.1:9/feed.xml: blocked_address" in err, err
    assert "allow_networks" in err
    # Allowed, the same feed fails for another reason (nothing listens there), and the run still says so.
    code, _, err = await wirewatch(*args, "--data-dir", str(tmp_path / "data2"))
    assert code == 1, err
    assert "blocked_address" not in err and "1 of 1 feed(s) failed" in err, err


@pytest.mark.integration
async def test_demo_prints_alerts_and_exits_zero() -> None:
    code, out, err = await wirewatch("demo")
    assert code == 0, err
    assert out.count("ALERT ") == 3
    assert "khalifa-haftar (Khalifa Haftar)" in out
    assert "3 alert, 3 deadletter, 1 duplicate, 1 no watch named" in out


def test_match_prints_one_json_line_per_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    note = tmp_path / "note.txt"
    note.write_text("Field report\nFayez al-Sarraj flew to Ankara; the GNA confirmed it.\n")
    code = main(
        [
            "match",
            "--watchlist",
            str(demo_watchlist_path()),
            str(GOLDEN / "machine-translated-jufra.html"),
            str(note),
        ]
    )
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [set(d) for d in lines] == [{"source", "title", "language", "text", "matches"}] * 2
    assert [d["language"] for d in lines] == ["en", "en"]  # identified from the text, .txt included
    for doc in lines:
        for m in doc["matches"]:
            assert doc["text"][m["start"] : m["end"]] == m["text"]
    html_doc, txt_doc = lines
    assert html_doc["title"] == "In Libya, the army of Haftaru strengthened the positions near Jufra"
    assert {m["watch"] for m in html_doc["matches"]} >= {"khalifa-haftar", "lna", "jufra"}
    # Comments on the page name the Wagner PMC; they are not article text.
    assert "wagner-group" not in {m["watch"] for m in html_doc["matches"]}
    assert [(m["watch"], m["text"]) for m in txt_doc["matches"]] == [
        ("fayez-al-sarraj", "Fayez al-Sarraj"),
        ("gna", "GNA"),
    ]


def test_bad_watchlist_is_refused_naming_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    watchlist = tmp_path / "w.yaml"
    watchlist.write_text(
        "watches:\n  - id: sirte\n    kind: location\n    name: Sirte\n  - id: sirte\n    kind: location\n    name: Surt\n"
    )
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("http://127.0.0.1:9/feed.xml\n")
    code = main(
        ["run", "--once", "--feeds", str(feeds), "--watchlist", str(watchlist), "--data-dir", str(tmp_path)]
    )
    assert code == 2
    assert "line 5: duplicate id 'sirte'" in capsys.readouterr().err


@pytest.mark.integration
async def test_worker_runs_against_a_broker_until_sigterm(
    any_broker: str, demo_site: SiteServer, tmp_path: Path
) -> None:
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(demo_site.feed_url + "\n")
    tag = tmp_path.name[-12:].replace("_", "-").lower()
    env = {**os.environ, "WIREWATCH_APP_ID": f"worker-{tag}", "WIREWATCH_TOPIC_PREFIX": f"w{tag}."}
    proc = await spawn("worker", "--broker", any_broker, *demo_run(feeds, tmp_path), env=env)
    assert proc.stdout is not None and proc.stderr is not None
    alerts = []
    try:
        async with asyncio.timeout(150):
            while len(alerts) < 3:
                line = await proc.stdout.readline()
                assert line, (await proc.stderr.read()).decode()
                alerts.append(json.loads(line))
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            await proc.wait()
    assert proc.returncode == 0, (await proc.stderr.read()).decode()
    assert {a["watches"][0] for a in alerts} == {"lna", "jufra", "fayez-al-sarraj"}


async def test_worker_refuses_to_start_without_a_broker(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.txt"
    feeds.write_text("http://127.0.0.1:9/feed.xml\n")
    env_free = ["--feeds", str(feeds), "--watchlist", str(demo_watchlist_path()), "--data-dir", str(tmp_path)]
    code, _, err = await wirewatch("worker", *env_free)
    assert code == 2
    assert "needs a broker" in err


@pytest.mark.integration
async def test_replay_runs_a_new_watchlist_over_retained_articles(
    demo_site: SiteServer, tmp_path: Path, embedded_broker: str
) -> None:
    tag = tmp_path.name[-12:].replace("_", "-").lower()
    env = {**os.environ, "WIREWATCH_APP_ID": f"replay-{tag}", "WIREWATCH_TOPIC_PREFIX": f"p{tag}."}
    feeds = tmp_path / "feeds.txt"
    feeds.write_text(demo_site.feed_url + "\n")
    code, _, err = await wirewatch(
        "run", "--once", "--broker", embedded_broker, "--feeds", str(feeds),
        "--watchlist", str(demo_watchlist_path()), "--data-dir", str(tmp_path / "data"), env=env,
    )  # fmt: skip
    assert code == 0, err
    # A watch the live watchlist never had: which retained articles would it have raised?
    new = tmp_path / "new-watchlist.yaml"
    new.write_text(
        "watches:\n  - {id: tarhuna, kind: location, name: Tarhuna}\n  - {id: tripoli, kind: location, name: Tripoli}\n"
    )
    replay = ["replay", "--broker", embedded_broker, "--watchlist", str(new), "--format", "jsonl"]
    code, out, err = await wirewatch(*replay, "--since", "2000-01-01", env=env)
    assert code == 0, err
    alerts = [json.loads(line) for line in out.splitlines()]
    assert alerts and all(set(a["watches"]) <= {"tarhuna", "tripoli"} for a in alerts)
    assert any("tarhuna" in a["watches"] for a in alerts)
    assert "4 article(s) read" in err, err  # the four unique articles the live run cleaned
    code, out, err = await wirewatch(*replay, "--since", "2999-01-01", env=env)
    assert code == 0 and out == "" and "0 article(s) read" in err, err
    code, _, err = await wirewatch("replay", "--watchlist", str(new), "--since", "2000-01-01", env=env)
    assert code == 2 and "give --broker" in err


@pytest.mark.integration
async def test_five_syndicated_copies_of_one_story_raise_one_alert(tmp_path: Path) -> None:
    from streams.site import Site
    from tests.synthetic import report
    from tests.unit.test_stories import COPIES

    outlets = ["Desert Wire", "Maghreb Daily", "Coastal Post", "Sahara Times", "Tripoli Monitor"]
    pages = [
        Page(
            f"copy-{k}",
            f"{outlet}: Haftar's forces pull back from Tripoli",
            "2020-06-04T10:00:00Z",
            "",
            tuple(c),
        )
        for k, (outlet, c) in enumerate(zip(outlets, COPIES, strict=True))
    ]
    pages.append(replace(report(1, "Sirte", 120), slug="unrelated"))
    site = SiteServer(Site("Wire Mirror", "Most read", [], pages))
    await site.start()
    try:
        feeds = tmp_path / "feeds.txt"
        feeds.write_text(site.feed_url + "\n")
        code, out, err = await wirewatch(
            "run", "--once", "--format", "jsonl", "--feeds", str(feeds),
            "--watchlist", str(demo_watchlist_path()), "--data-dir", str(tmp_path / "data"),
        )  # fmt: skip
    finally:
        await site.stop()
    assert code == 0, err
    alerts = [json.loads(line) for line in out.splitlines()]
    assert len(alerts) == 2, [a["url"] for a in alerts]
    assert {a["url"].rsplit("/", 1)[1] for a in alerts} - {"unrelated.html"} <= {
        f"copy-{k}.html" for k in range(5)
    }
    assert "4 story already alerted" in err, err
