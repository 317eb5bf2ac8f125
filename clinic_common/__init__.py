"""What every clinic-edge service process shares, the room appliance and the hub alike: the error
tree with its exit codes, reading a TOML configuration into strict models (one message listing
every problem, paths resolved against the config file's folder) and the broker connection's
settings and credentials. It knows nothing of either product."""

__version__ = "0.1.0"  # the release of the room, the hub, the toolchain and the packages
