# A package, so its test modules (test_dockerfile.py...) don't clash with tests/fastapi_app's.
