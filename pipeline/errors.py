"""Errors a user can cause. The CLI prints these without a traceback: the message is the fix."""


class PetasegError(Exception):
    """Base for every error that names a user input and what to do about it."""


class InputError(PetasegError):
    """A path, URL, array, dtype, shape or ROI given by the user is unusable."""


class ConfigError(PetasegError):
    """A configuration key or value is wrong."""


class CheckpointError(PetasegError):
    """A model checkpoint is missing, corrupt or of another architecture."""


class ClusterError(PetasegError):
    """A scheduler cannot be reached or lacks what the work needs."""


class BlockFailures(PetasegError):
    """Some blocks failed after all retries; they are named and were not marked done."""

    def __init__(self, stage: str, failed: list[int], total_failed: int, errors: dict[int, str]):
        self.stage = stage
        self.failed = failed
        self.total_failed = total_failed
        self.errors = errors
        shown = ", ".join(str(b) for b in failed[:20])
        more = f" (and {total_failed - 20} more)" if total_failed > 20 else ""
        first = next(iter(errors.items()), None)
        detail = f"\n  block {first[0]}: {first[1].splitlines()[0]}" if first else ""
        super().__init__(
            f"stage '{stage}': {total_failed} block(s) failed after retries: {shown}{more}.{detail}\n"
            "  Those blocks were not marked done; fix the cause and rerun the same command "
            "to process only them."
        )
