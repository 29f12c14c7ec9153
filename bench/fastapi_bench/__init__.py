"""The FastAPI reference app for bench/serve/fastapi_setups.py: orders_api as it is, plus /io."""
