"""The private parts of Faust and aiokafka that streams/kafka/faust_patches.py relies on are still there."""

from __future__ import annotations

import inspect

from aiokafka.consumer.consumer import AIOKafkaConsumer
from aiokafka.consumer.fetcher import Fetcher
from aiokafka.consumer.subscription_state import TopicPartitionState
from faust.tables.recovery import Recovery
from faust.transport.consumer import Consumer, ThreadDelegateConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread


def assigned_in(cls: type, *names: str) -> list[str]:
    """The names that cls's source never assigns as self.NAME (what a rename upstream would leave)."""
    source = inspect.getsource(cls)
    return [name for name in names if f"self.{name} =" not in source and f"self.{name}:" not in source]


def test_faust_consumer_members() -> None:
    for name in ("_new_offset", "perform_seek", "on_partitions_revoked", "seek_wait", "earliest_offsets"):
        assert callable(getattr(Consumer, name, None)), name
    assert callable(getattr(ThreadDelegateConsumer, "_getmany", None))
    assert inspect.isasyncgenfunction(Consumer.getmany)
    assert "callback" in inspect.signature(Consumer.__init__).parameters
    missing = assigned_in(
        Consumer,
        "_committed_offset",
        "_acked",
        "_acked_index",
        "_unacked_messages",
        "_paused_partitions",
        "_active_partitions",
        "_read_offset",
        "callback",
    )
    assert not missing


def test_faust_consumer_thread_members() -> None:
    for name in ("_create_worker_consumer", "_fetch_records", "_ensure_consumer", "call_thread"):
        assert callable(getattr(AIOKafkaConsumerThread, name, None)), name
    assert (
        "_consumer" in vars(AIOKafkaConsumerThread) or "_consumer" in AIOKafkaConsumerThread.__annotations__
    )


def test_aiokafka_members() -> None:
    assert not assigned_in(AIOKafkaConsumer, "_fetch_max_wait_ms", "_fetcher", "_subscription")
    assert not assigned_in(TopicPartitionState, "_position")
    assert isinstance(TopicPartitionState.has_valid_position, property)
    assert isinstance(TopicPartitionState.position, property)
    assert not assigned_in(
        Fetcher, "_fetch_task", "_in_flight", "_pending_tasks", "_records", "_subscriptions"
    )


def test_faust_recovery_members() -> None:
    assert not assigned_in(Recovery, "active_highwaters", "active_offsets")


def test_faust_app_members() -> None:
    import faust

    for name in ("_new_consumer", "_new_transport", "_new_producer_transport", "on_rebalance_end"):
        assert callable(getattr(faust.App, name, None)), name


def test_faust_current_event_variable() -> None:
    import contextvars

    import faust.streams

    assert isinstance(faust.streams._current_event, contextvars.ContextVar)
