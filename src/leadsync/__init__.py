"""leadsync: BeWorking's lead API and its durable, exactly-once sync to HubSpot contacts."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("leadsync")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"

__all__ = ["__version__"]
