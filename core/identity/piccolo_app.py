from pathlib import Path

from piccolo.conf.apps import AppConfig

from core.identity.tables import (
    ApiToken,
    FieldRule,
    LoginAttempt,
    PasswordReset,
    Role,
    RolePermission,
    StaffSession,
    Team,
    TeamMember,
    User,
    UserRole,
)

APP_CONFIG = AppConfig(
    app_name="core_identity",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[User, Team, TeamMember, Role, RolePermission, UserRole, StaffSession,
                   LoginAttempt, ApiToken, PasswordReset, FieldRule],
    migration_dependencies=["core.piccolo_app"],
)
