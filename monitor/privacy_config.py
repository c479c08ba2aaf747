"""The ``privacy:`` section: masking, encryption at rest, retention of personal data."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PrivacyConfig(BaseModel):
    """Complaint data is personal data: who sees it unmasked, how it is stored, how long it is kept."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mask_roles: list[str] = Field(default_factory=lambda: ["viewer"],
                                  description="roles that see phone, ID and order numbers masked")
    key_env: str = Field(default="MONITOR_DATA_KEY",
                         description="environment variable holding the key that encrypts tickets' personal fields")
    require_key: bool = Field(default=False, description="refuse to start without the encryption key")
    retention_posts_days: int | None = Field(default=None, ge=1,
                                             description="raw posts older than this are purged (aggregates kept)")
    retention_personal_days: int | None = Field(default=None, ge=1,
                                                description="personal fields of closed tickets older than this "
                                                            "are erased")
