"""Runs in the FastAPI app's own interpreter (`python -c <this file>`, from the app's folder), never
imported by the kit: it may use only the standard library and Alembic.

    python -c "$(cat alembic_driver.py)" OUT.json ALEMBIC_INI

OUT.json gets {"revisions": {revision: file}, "sql": <`alembic upgrade heads --sql`>, "error": ...}:
every revision's file (where its waivers are) and the SQL of all of them, rendered offline, from
an empty database to every head, as the app's env.py renders it. Offline mode connects nowhere.
"""

import io
import json
import os
import sys
import traceback


def main(out_path, ini_path):
    result = {"revisions": {}, "sql": "", "error": None}
    try:
        from alembic import command
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        buffer = io.StringIO()
        # Alembic writes the offline SQL to the config's output buffer (env.py's context.configure
        # takes it from there unless it names its own).
        config = Config(ini_path, output_buffer=buffer, stdout=sys.stderr)
        script = ScriptDirectory.from_config(config)
        result["revisions"] = {rev.revision: os.path.realpath(rev.path) for rev in script.walk_revisions()}
        command.upgrade(config, "heads", sql=True)
        result["sql"] = buffer.getvalue()
    except BaseException:  # noqa: BLE001 - env.py may sys.exit(); the kit reports what failed
        result["error"] = traceback.format_exc()
    with open(out_path, "w", encoding="utf-8") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
