"""The FastAPI stack (import as `stacks.fastapi`; the library itself is `fastapi`)."""
