"""The web console: live alerts, feed health, dead letters, the watchlist to try, the pipeline's rates."""
