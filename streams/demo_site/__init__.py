"""The bundled sample news site that `wirewatch demo` serves on loopback."""
