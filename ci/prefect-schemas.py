"""Ground truth for flowship's parameter schemas: what Prefect itself computes.

Usage: <prefect venv>/bin/python ci/prefect-schemas.py FILE.py  → {"function": parameter_openapi_schema, ...}
Imports FILE (as `prefect deploy` does) and runs Prefect's parameter_schema on every flow in it.
"""
import importlib.util
import json
import sys

from prefect.flows import Flow
from prefect.utilities.callables import parameter_schema

spec = importlib.util.spec_from_file_location("corpus", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
out = {}
for attr, value in vars(module).items():
    if isinstance(value, Flow):
        out[attr] = {"flow_name": value.name, "schema": parameter_schema(value.fn).model_dump_for_openapi(),
                     "description": value.description}
print(json.dumps(out, indent=1, sort_keys=True))
