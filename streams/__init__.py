"""The wirewatch Faust app, its topics, records, settings and the stage functions agents call."""
