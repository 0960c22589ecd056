"""A platform's admins as a test sets them: the dashboard's role source for messages a test builds by hand."""

from __future__ import annotations


class PlatformRoles:
    """Answers the dashboard's role check from a set the test edits (promote, demote)."""

    def __init__(self) -> None:
        self.admins: set[tuple[str, str]] = set()  # (team, user)

    def says(self, team_id: str, user_id: str, *, admin: bool) -> None:
        """The platform now makes this person an admin, or not."""
        if admin:
            self.admins.add((team_id, user_id))
        else:
            self.admins.discard((team_id, user_id))

    async def is_admin(self, team_id: str, user_id: str) -> bool:
        """The RoleSource check."""
        return (team_id, user_id) in self.admins
