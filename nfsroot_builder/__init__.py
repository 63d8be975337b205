"""nfsroot-build: the boot server and NFS root of a diskless Debian cluster."""
__version__ = "0.1.0"
