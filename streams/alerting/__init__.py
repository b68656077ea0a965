"""From matches to messages: stories, alerts, feed health, routes, rendering, delivery."""
