"""stepengine: a fast, safe, declarative step engine for prefect.yaml files.

The public API, in the order of the flow: ``load`` (YAML → ``Config``), ``validate``, ``run`` /
``run_async`` (→ outputs; what to run as keywords or one ``RunOptions``), the value types
(``Config``, ``Step``, ``Deployment``, ``Event``, ``Issue``), resolvers for blocks and variables, and
the error tree. Step authors import from ``stepengine.step_api`` instead.
"""

from stepengine.api import load, loads, run, run_async, validate
from stepengine.config import Config, Deployment, RunOptions, Step
from stepengine.errors import (
    ConfigError,
    Issue,
    ProcessError,
    StepEngineError,
    StepError,
    StepExecutionError,
    StepLookupError,
    StoreError,
    TemplateError,
    ValidationError,
    YAMLSyntaxError,
)
from stepengine.events import Event
from stepengine.project.source import GitRepository, build_from_flow, from_source
from stepengine.registry import Registry, StepFunction
from stepengine.resolvers import ChainResolver, FileResolver, InMemoryResolver, Resolver

__version__ = "0.1.0"

__all__ = [
    "ChainResolver",
    "Config",
    "ConfigError",
    "Deployment",
    "Event",
    "FileResolver",
    "GitRepository",
    "InMemoryResolver",
    "Issue",
    "ProcessError",
    "Registry",
    "Resolver",
    "RunOptions",
    "Step",
    "StepEngineError",
    "StepError",
    "StepExecutionError",
    "StepFunction",
    "StepLookupError",
    "StoreError",
    "TemplateError",
    "ValidationError",
    "YAMLSyntaxError",
    "build_from_flow",
    "from_source",
    "load",
    "loads",
    "run",
    "run_async",
    "validate",
]

for _name in __all__:
    _obj = globals()[_name]
    if hasattr(_obj, "__module__"):
        try:
            _obj.__module__ = "stepengine"
        except (AttributeError, TypeError):
            pass
del _name, _obj
