"""Account changes from a shell, the same for every product (``clinic-hub user``, ``clinic-edge
review-account``): the password is asked twice, or read from standard input for scripts."""

from __future__ import annotations

import getpass
import os
import sys

from clinic_common.auth.accounts import Accounts
from clinic_common.errors import ConfigError


def shell_actor() -> str:
    """Who acts from a shell, for the audit log: the login user (under sudo, who ran sudo)."""
    return f"shell ({os.environ.get('SUDO_USER') or getpass.getuser()})"


def change_account(accounts: Accounts, username: str, action: str, role: str, password_stdin: bool) -> str:
    """Create or reset (``save``), ``disable``, ``enable`` or ``delete`` an account, or ``list`` them;
    returns what to print.

    Raises:
        ConfigError: a bad name, role or password, the two passwords differ, the last administrator.
    """
    actor = shell_actor()
    if action == "list":
        rows = [
            (a.username, a.role, "disabled" if a.disabled_at else "enabled", a.last_login_at) for a in accounts.list()
        ]
        return "\n".join(f"{n}\t{r}\t{state}\tlast log-in {last or 'never'}" for n, r, state, last in rows)
    if action == "save":
        if password_stdin:
            password = sys.stdin.readline().rstrip("\n")
        else:
            password = getpass.getpass(f"password for {username}: ")
            if getpass.getpass("again: ") != password:
                raise ConfigError("the two passwords differ")
        accounts.save(username, password, role, actor)
        return f"account {username} ({role}) saved"
    if action == "disable":
        accounts.disable(username, actor)
        return f"account {username} disabled; its log-ins ended"
    if action == "enable":
        accounts.enable(username, actor)
        return f"account {username} enabled"
    if action == "delete":
        accounts.delete(username, actor)
        return f"account {username} deleted"
    raise ConfigError(f"unknown account action {action!r}")
