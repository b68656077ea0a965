"""State values are typed, and read what the Faust tables' changelogs have always held."""

from __future__ import annotations

from streams.kafka.state import Story, _Held, _Keys


def test_a_story_reads_and_writes_the_changelogs_format() -> None:
    assert Story.unpacked("a1b2 haftar sirte") == Story("a1b2", ("haftar", "sirte"))
    assert Story("a1b2", ("haftar", "sirte")).packed() == "a1b2 haftar sirte"
    assert Story.unpacked("a1b2") == Story("a1b2", ())


def test_held_deliveries_read_and_write_the_changelogs_format() -> None:
    old = '{"due": 1700000000.0, "records": ["{\\"delivery_id\\": \\"d1\\"}"]}'
    held = _Held.unpacked(old)
    assert held == _Held(1700000000.0, ('{"delivery_id": "d1"}',))
    assert _Held.unpacked(held.packed()) == held
    assert _Held.unpacked("") == _Held(None, ())


def test_kinds_of_entry_sharing_a_table_keep_to_their_prefix() -> None:
    table: dict[str, str] = {}
    urls, hashes = _Keys(table, "url:"), _Keys(table, "hash:")
    urls["https://a.example/1"] = "https://a.example/1"
    hashes.setdefault("h1", "https://a.example/1")
    hashes.setdefault("h1", "https://b.example/2")  # the first article with a text keeps it
    assert table == {"url:https://a.example/1": "https://a.example/1", "hash:h1": "https://a.example/1"}
    assert "h1" in hashes and "h1" not in urls
    assert hashes.items() == [("h1", "https://a.example/1")]
