"""The pipeline, in order: the seed page, top to bottom.

This list is the only place the order lives.
"""
from __future__ import annotations

from .base import Step, StepResult
from .dhcp import DhcpServer
from .nfs import NfsExports
from .packages import ServerPackages
from .services import Services
from .tftp import TftpServer

STEPS: tuple[type[Step], ...] = (
    ServerPackages,
    TftpServer,
    DhcpServer,
    NfsExports,
    Services,
)

__all__ = ["STEPS", "Step", "StepResult"]
