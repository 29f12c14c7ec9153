"""The kit's command line, which `pulumi up` never runs: `python -m cli render|schema|reference|verify`.

`render.py` runs the program under the SDK's mock engine (`offline.py`, `mocks.py`) and writes
`out/<stack>/`; `sdk_imports.py` makes that run fast; `schema.py` and `reference.py` generate the
stack file's JSON Schema and the README's config reference from the settings models; `verify/`
checks a deployed aws stack's live resources with boto3, read-only.
"""
