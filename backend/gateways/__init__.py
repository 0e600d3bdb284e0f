"""Adapters for the outside services we call, each with a loopback sandbox (DESIGN rules 7-8).

Every gateway is a small ``typing.Protocol`` with frozen dataclass inputs and outputs, and
raises only :class:`~backend.gateways.errors.GatewayRetryable` or
:class:`~backend.gateways.errors.GatewayTerminal`. :mod:`backend.gateways.factory` builds the
implementation from settings; in the demo and the tests the settings point at the sandboxes
(:mod:`backend.gateways.sandboxes`), which speak the real protocol on 127.0.0.1.
"""
