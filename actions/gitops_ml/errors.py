"""The base of every error gitops-ml reports to a user: the CLI prints its message and exits 2."""


class GitopsMLError(Exception):
    """An error whose message says what failed, the value seen and what to do next."""
