"""Domain types of the dashboard: who is signed in."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from memcube.models.cube import Principal


class DashboardSession(BaseModel):
    """A signed-in dashboard user: the admin token or an admin key, acting in one tenant until `expires_at`."""

    principal: Principal
    key_name: str | None = None
    csrf: str
    created_at: datetime
    expires_at: datetime

    @property
    def actor(self) -> str:
        """The actor recorded in what the dashboard changes: `dashboard:admin-token` or `dashboard:key:<id>`."""
        return f"dashboard:{self.principal.actor}"

    @property
    def display_name(self) -> str:
        if self.principal.superuser:
            return "admin token"
        return f"key {self.key_name or self.principal.key_id}"
