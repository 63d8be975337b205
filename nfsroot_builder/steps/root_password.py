from __future__ import annotations

from .. import chroot
from ..context import Context
from .base import Step, StepResult, secret_digest


def current_hash(ctx: Context) -> str | None:
    """root's hash field in the root's /etc/shadow (shadow(5)), or None."""
    try:
        for line in (ctx.files.on_disk(ctx.root) / "etc/shadow").read_text().splitlines():
            fields = line.split(":")
            if fields[0] == "root" and len(fields) > 1:
                return fields[1]
    except OSError:
        pass
    return None


class RootPassword(Step):
    """Set root's password in the root from root.password_hash (the seed's `passwd`).

    The config holds a crypt(5) hash, never a plain password (make one with
    `mkpasswd -m yescrypt`), or "!" for a locked account. It reaches
    `chpasswd -e` inside the chroot on standard input only: it is never on
    a command line (visible in ps), in a log or a dry-run transcript
    ("<redacted>"), or in the state (the fingerprint holds a digest of it).
    """
    name = "root-password"
    needs = ("bootstrap",)

    def fingerprint(self, ctx: Context) -> dict:
        return {"password_hash": secret_digest(ctx.config.root.password_hash)}

    def verify(self, ctx: Context) -> list[str]:
        if current_hash(ctx) != ctx.config.root.password_hash:
            return ["root's password in the root's /etc/shadow is not the configured one"]
        return []

    def run(self, ctx: Context) -> StepResult:
        wanted = ctx.config.root.password_hash
        if current_hash(ctx) == wanted:
            return StepResult(changed=False)
        with chroot.session(ctx) as ch:
            # chpasswd(8) -e: the input is already encrypted.
            ch.run(["chpasswd", "-e"], input=f"root:{wanted}\n", secret=True)
        return StepResult(changed=True)
