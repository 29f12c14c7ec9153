#!/bin/sh
# Runs before the new version serves (in the image, from backend/): the schema first.
set -eu
alembic upgrade head
