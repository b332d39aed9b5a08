from pathlib import Path

from piccolo.conf.apps import AppConfig

from core.interactions.tables import EmailTemplate, Interaction, InteractionParticipant

APP_CONFIG = AppConfig(
    app_name="core_interactions",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[Interaction, InteractionParticipant, EmailTemplate],
    migration_dependencies=["core.customers.piccolo_app"],
)
