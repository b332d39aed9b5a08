from pathlib import Path

from piccolo.conf.apps import AppConfig

from core.customers.tables import (
    ConsentRecord,
    Customer,
    CustomerAddress,
    CustomerEmail,
    CustomerPhone,
    CustomerTag,
    CustomField,
    CustomValue,
)

APP_CONFIG = AppConfig(
    app_name="core_customers",
    migrations_folder_path=str(Path(__file__).parent / "piccolo_migrations"),
    table_classes=[Customer, CustomerEmail, CustomerPhone, CustomerAddress, CustomerTag,
                   ConsentRecord, CustomField, CustomValue],
    migration_dependencies=["core.identity.piccolo_app"],
)
