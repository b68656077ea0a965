"""Pure stage functions: each takes plain values and returns plain values, with no Kafka in sight."""
