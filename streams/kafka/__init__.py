"""Kafka: the embedded broker, the topics, the state tables and the corrections to Faust."""
