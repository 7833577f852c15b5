"""Serve a real Neutron API on 127.0.0.1; runs inside the service venv (tests/real/.cache/venv), not the project's.

Usage: neutron_server.py CONFIG_DIR HOST PORT

Neutron has no `neutron-server` console script any more: the API is the WSGI application
`neutron.wsgi.api:application`. It reads OS_NEUTRON_CONFIG_DIR / OS_NEUTRON_CONFIG_FILES at import
time, so they are set before the import.

`neutron-db-manage upgrade` does not work on SQLite (its migrations use ALTER statements SQLite lacks),
so the schema is created from the models instead, and the four default security-group rule templates
that a migration would have inserted are seeded by hand: without them new security groups get no
rules at all.
"""

from __future__ import annotations

import os
import sys
import uuid


def create_schema(sqlite_path: str) -> None:
    """Create the Neutron schema from the models and seed the default SG rule templates, once."""
    import sqlalchemy as sa
    from neutron.db.migration.models import head  # noqa: F401  (imports every model onto the metadata)
    from neutron_lib.db import model_base

    engine = sa.create_engine(f"sqlite:///{sqlite_path}")
    model_base.BASEV2.metadata.create_all(engine)
    templates = [
        # direction, ethertype, remote_group_id, used_in_default_sg, used_in_non_default_sg, description
        ("egress", "IPv4", None, True, True, "Legacy default SG rule for egress traffic"),
        ("egress", "IPv6", None, True, True, "Legacy default SG rule for egress traffic"),
        ("ingress", "IPv4", "PARENT", True, False, "Legacy default SG rule for ingress traffic"),
        ("ingress", "IPv6", "PARENT", True, False, "Legacy default SG rule for ingress traffic"),
    ]
    with engine.begin() as conn:
        if conn.execute(sa.text("SELECT COUNT(*) FROM securitygroupdefaultrules")).scalar():
            return
        for direction, ethertype, remote_group, in_default, in_other, description in templates:
            std_id = conn.execute(
                sa.text(
                    "INSERT INTO standardattributes (resource_type, description, revision_number, created_at,"
                    " updated_at) VALUES ('securitygroupdefaultrules', :d, 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
                ),
                {"d": description},
            ).lastrowid
            conn.execute(
                sa.text(
                    "INSERT INTO securitygroupdefaultrules (id, standard_attr_id, remote_group_id, direction,"
                    " ethertype, used_in_default_sg, used_in_non_default_sg)"
                    " VALUES (:id, :std, :rg, :dir, :eth, :indef, :inother)"
                ),
                {
                    "id": str(uuid.uuid4()),
                    "std": std_id,
                    "rg": remote_group,
                    "dir": direction,
                    "eth": ethertype,
                    "indef": in_default,
                    "inother": in_other,
                },
            )


def main() -> None:
    config_dir, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    create_schema(os.path.join(config_dir, "neutron.sqlite"))
    os.environ["OS_NEUTRON_CONFIG_DIR"] = config_dir
    os.environ["OS_NEUTRON_CONFIG_FILES"] = "neutron.conf;ml2_conf.ini"
    # neutron.server parses sys.argv as oslo.config CLI arguments: leave it none of ours.
    sys.argv = sys.argv[:1]
    import waitress
    from neutron.wsgi.api import application

    # One thread: SQLite answers "database is locked" to concurrent writers from several threads.
    waitress.serve(application, host=host, port=port, threads=1, ident="neutron", connection_limit=200)


if __name__ == "__main__":
    main()
