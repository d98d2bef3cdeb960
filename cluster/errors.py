"""Errors of connecting to compute; each message says what to fix."""


class ClusterSetupError(RuntimeError):
    """A cluster cannot be used as specified (base of the errors below)."""


class ClusterSpecError(ClusterSetupError):
    """A cluster spec is malformed (an unknown kind, a worker count that is not a positive
    integer, a scheduler address that is not tcp://host:port or tls://host:port)."""


class ClusterConnectError(ClusterSetupError):
    """The scheduler cannot be reached, or refuses the connection (TLS)."""
