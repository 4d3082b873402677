"""The OpenAI-compatible gateway: FastAPI routes, upstream adapters, streaming and caching."""

from sluicegate.gateway._app import create_app
from sluicegate.gateway._settings import GatewaySettings, from_environment

__all__ = ["GatewaySettings", "create_app", "from_environment"]
