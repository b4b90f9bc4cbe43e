"""Jinja extensions for this cookiecutter template (cookiecutter loads them from `_extensions`).

Cookiecutter renders every answer as a Jinja template before any hook can validate it, in an
environment that is not sandboxed: an answer such as `{{ lipsum.__globals__.os.popen(...) }}`
would run code on the machine generating the project. `Sandbox` turns that environment into
Jinja's sandboxed one before anything is rendered, so such an answer fails with a SecurityError
and nothing runs, while ordinary template features keep working.
"""

from jinja2.ext import Extension
from jinja2.sandbox import SandboxedEnvironment


class Sandbox(Extension):
    def __init__(self, environment):
        super().__init__(environment)
        environment.__class__ = type(f"Sandboxed{type(environment).__name__}",
                                     (SandboxedEnvironment, type(environment)), {})
        # What SandboxedEnvironment.__init__ would have set: the operator tables it checks.
        environment.binop_table = dict(SandboxedEnvironment.default_binop_table)
        environment.unop_table = dict(SandboxedEnvironment.default_unop_table)
