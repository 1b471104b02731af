"""Session events that leave the process: the durable recorder, signed webhooks, OpenID
Shared Signals (transmitter and receiver) and OpenID Connect back-channel logout."""
